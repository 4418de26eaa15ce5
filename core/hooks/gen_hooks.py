#!/usr/bin/env python3
"""gen_hooks - generate hook headers, registry code and docs from hooks.table.

usage: gen_hooks.py TABLE --header-dir DIR --source FILE --docs FILE

One table line per hook; see the table's own header for the format.
Pure standard library so any python3 can run it at build time.
"""
import argparse
import os
import re
import sys

RULES = {"all", "first_nonzero", "first_nonnull"}


class Param:
    def __init__(self, text, where):
        text = text.strip()
        tag = None
        if ":" in text:
            text, tag = text.rsplit(":", 1)
            tag = tag.strip()
        m = re.match(r"^(.*?)([A-Za-z_][A-Za-z0-9_]*)$", text.strip())
        if not m:
            raise SystemExit(f"{where}: cannot parse parameter '{text}'")
        self.ctype = " ".join(m.group(1).split()).replace(" *", " *")
        self.name = m.group(2)
        self.tag = tag

    @property
    def decl(self):
        sep = "" if self.ctype.endswith("*") else " "
        return f"{self.ctype}{sep}{self.name}"


class Hook:
    def __init__(self, fields, where):
        self.name, self.ret, self.rule, params, self.when = [f.strip() for f in fields]
        self.where = where
        if self.rule not in RULES:
            raise SystemExit(f"{where}: unknown chaining rule '{self.rule}'")
        if self.ret == "void" and self.rule != "all":
            raise SystemExit(f"{where}: a void hook can only chain 'all'")
        if self.ret != "void" and self.rule == "all":
            raise SystemExit(f"{where}: a non-void hook needs first_nonzero or first_nonnull")
        self.params = [Param(p, where) for p in params.split(",")] if params.strip() else []

    @property
    def ftype(self):
        return f"ec_hook_core_{self.name}_func_t"

    def proto_args(self):
        return ", ".join(p.decl for p in self.params) or "void"

    def call_args(self):
        return ", ".join(p.name for p in self.params)


def read_table(path):
    hooks = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("|")
            where = f"{path}:{lineno}"
            if len(fields) != 5:
                raise SystemExit(f"{where}: expected 5 '|'-separated fields, got {len(fields)}")
            hooks.append(Hook(fields, where))
    names = [h.name for h in hooks]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: a hook is listed twice")
    return hooks


def trace_lines(hook, when):
    """C statements adding the hook's arguments to trace builder tb."""
    out = []
    params = hook.params
    i = 0
    while i < len(params):
        p = params[i]
        nxt = params[i + 1] if i + 1 < len(params) else None
        tag = p.tag
        if tag == "skip" or p.ctype == "struct timeval *":
            pass
        elif tag == "connfd":
            out.append(f'mta_tb_connfd(&tb, "{p.name}", {p.name});')
        elif tag == "connerr":
            out.append(f'mta_tb_connerr(&tb, "{p.name}", {p.name});')
        elif tag == "ip":
            out.append(f'mta_tb_ip(&tb, "{p.name}", {p.name});')
        elif tag == "ipv4":
            out.append(f'mta_tb_ipv4(&tb, "{p.name}", {p.name});')
        elif p.ctype == "domain_record *":
            out.append(f"mta_tb_domain(&tb, {p.name});")
        elif p.ctype == "int" and p.name in ("binding_slot", "slot", "binding"):
            out.append(f"mta_tb_binding(&tb, {p.name});")
        elif p.ctype == "message *":
            out.append(f"mta_tb_message(&tb, {p.name});")
        elif p.ctype == "connection_handle *":
            out.append(f"mta_tb_conn(&tb, {p.name});")
        elif p.ctype == "const char *" and nxt is not None and nxt.ctype == "int" \
                and nxt.name == p.name + "_len":
            out.append(f'mta_tb_strn(&tb, "{p.name}", {p.name}, {nxt.name});')
            i += 1
        elif p.ctype == "const char *":
            out.append(f'mta_tb_str(&tb, "{p.name}", {p.name});')
        elif p.ctype in ("int", "long", "unsigned", "uint32_t", "time_t", "size_t"):
            out.append(f'mta_tb_int(&tb, "{p.name}", (int64_t){p.name});')
        elif p.ctype in ("int *", "long *", "time_t *"):
            out.append(f'if ({p.name}) mta_tb_int(&tb, "{p.name}", (int64_t)*{p.name});')
        else:
            raise SystemExit(f"{hook.where}: no trace rule for parameter '{p.decl}'; add a :tag")
        i += 1
    return out


def trace_fields(hook):
    """The trace fields a record of the hook may carry, space-separated: what
    trace_lines() and ret_lines() add (the expectation parser rejects a
    matcher on any other key)."""
    names = []
    params = hook.params
    i = 0
    while i < len(params):
        p = params[i]
        nxt = params[i + 1] if i + 1 < len(params) else None
        if p.tag == "skip" or p.ctype == "struct timeval *":
            pass
        elif p.ctype == "domain_record *":
            names.append("domain")
        elif p.ctype == "int" and p.name in ("binding_slot", "slot", "binding") \
                and p.tag not in ("connfd", "connerr", "ipv4"):
            names.append("binding")
        elif p.ctype == "message *":
            names += ["msg", "rcpt"]
        elif p.ctype == "connection_handle *":
            names += ["conn", "addr", "domain"]
        else:
            names.append(p.name)
            if p.ctype == "const char *" and nxt is not None and nxt.ctype == "int" \
                    and nxt.name == p.name + "_len":
                i += 1
        i += 1
    if hook.ret == "message *":
        names += ["ret_msg", "ret"]
    elif hook.ret != "void":
        names.append("ret")
    out = []
    for n in names:
        if n not in out:
            out.append(n)
    return " ".join(out)


def ret_lines(hook):
    """C statements adding a non-void hook's result to trace builder tb.

    Pointers never reach the trace (their values differ between runs): a
    message shows its id, any other pointer only whether it is NULL.
    """
    if hook.ret == "message *":
        return ['if (ret)',
                '    mta_tb_int(&tb, "ret_msg", (int64_t)ret->id);',
                'else',
                '    mta_tb_str(&tb, "ret", "NULL");']
    if hook.ret.endswith("*"):
        return ['mta_tb_str(&tb, "ret", ret ? "non-NULL" : "NULL");']
    return ['mta_tb_int(&tb, "ret", (int64_t)ret);']


def gen_header(hook):
    guard = f"MTASIM_HOOKS_CORE_{hook.name.upper()}_H"
    closure_args = "void *closure" + (", " + hook.proto_args() if hook.params else "")
    return f"""/* Generated by core/hooks/gen_hooks.py from core/hooks/hooks.table: do not edit. */
/*
 * {hook.name} - {hook.when}
 * chaining: {hook.rule}
 */
#ifndef {guard}
#define {guard}

#include "hooks/hook_types.h"

typedef {hook.ret} (*{hook.ftype})({closure_args});

/* Non-zero when at least one provider is registered. */
int has_core_{hook.name}_hook(void);
/* Add a provider before / after those already registered. */
void register_core_{hook.name}_hook_first({hook.ftype} hook, void *closure);
void register_core_{hook.name}_hook_last({hook.ftype} hook, void *closure);
/* The core's call point. */
{hook.ret} call_core_{hook.name}_hook({hook.proto_args()});

#endif
"""


def gen_source(hooks):
    out = ["/* Generated by core/hooks/gen_hooks.py from core/hooks/hooks.table: do not edit. */",
           '#include "hook_registry.h"',
           '#include "trace.h"']
    for h in hooks:
        out.append(f'#include "hooks/core/{h.name}.h"')
    out.append("")
    for h in hooks:
        n = h.name
        out.append(f'static struct hook_list list_{n} = {{ .name = "{n}", '
                   f'.fields = "{trace_fields(h)}" }};')
    out.append("")
    out.append("struct hook_list *const hook_lists[] = {")
    for h in hooks:
        out.append(f"    &list_{h.name},")
    out.append("    NULL,\n};\n")
    for h in hooks:
        n = h.name
        args = h.call_args()
        pargs = "p->closure" + (", " + args if args else "")
        nonvoid = h.ret != "void"
        # record_<hook>: one trace record, the call point's ("hook", p NULL)
        # or one provider's ("provider"), so both show the arguments alike.
        rparams = "const struct hook_provider *p" + (", " + h.proto_args() if h.params else "")
        if nonvoid:
            rparams += f", {h.ret} ret"
        out.append(f"/* record_{n} - trace the call point (p NULL) or one provider's call */")
        out.append(f"static void record_{n}({rparams})")
        out.append("{")
        out.append("    struct mta_tb tb;")
        for prm in h.params:     # some are not shown (now, struct timeval *)
            out.append(f"    (void){prm.name};")
        out.append(f'    mta_tb_begin(&tb, p ? "provider" : "hook", "{n}");')
        out.append("    if (p) {")
        out.append('        mta_tb_str(&tb, "plugin", p->plugin);')
        out.append("        const char *label = hook_closure_label(p->closure);")
        out.append("        if (label)")
        out.append('            mta_tb_str(&tb, "closure", label);')
        out.append("    }")
        for line in trace_lines(h, "after"):
            out.append("    " + line)
        if nonvoid:
            out.extend("    " + line for line in ret_lines(h))
        out.append("    mta_tb_emit(&tb);")
        out.append("}\n")
        rargs = args + (", ret" if nonvoid else "") if args else ("ret" if nonvoid else "")
        rargs = (", " + rargs) if rargs else ""
        out.append(f"int has_core_{n}_hook(void) {{ return list_{n}.n > 0; }}")
        out.append(f"void register_core_{n}_hook_first({h.ftype} hook, void *closure)")
        out.append(f"{{ hook_list_register(&list_{n}, (hook_fn)hook, closure, 1); }}")
        out.append(f"void register_core_{n}_hook_last({h.ftype} hook, void *closure)")
        out.append(f"{{ hook_list_register(&list_{n}, (hook_fn)hook, closure, 0); }}")
        out.append(f"{h.ret} call_core_{n}_hook({h.proto_args()})")
        out.append("{")
        if nonvoid:
            zero = "NULL" if h.rule == "first_nonnull" else "0"
            out.append(f"    {h.ret} ret = {zero};")
        out.append(f"    struct hook_list *l = &list_{n};")
        out.append("    for (int i = 0; i < l->n; i++) {")
        out.append("        const struct hook_provider *p = &l->v[i];")
        out.append("        hook_enter(l, p);")
        call = f"(({h.ftype})p->fn)({pargs})"
        if not nonvoid:
            out.append(f"        {call};")
            out.append("        hook_leave(l, p, 0, 0);")
        else:
            out.append(f"        ret = {call};")
            out.append("        hook_leave(l, p, 1, (int64_t)(intptr_t)ret);")
        out.append("        if (mta_tracing())")
        out.append(f"            record_{n}(p{rargs});")
        if nonvoid:
            out.append("        if (ret) break;")
        out.append("    }")
        out.append("    if (mta_tracing())")
        out.append(f"        record_{n}(NULL{rargs});")
        if nonvoid:
            out.append("    return ret;")
        out.append("}\n")
    return "\n".join(out)


def gen_docs(hooks):
    out = ["# Hook reference", "",
           "Generated from `core/hooks/hooks.table` by `core/hooks/gen_hooks.py`; do not edit.",
           "A test checks that this page matches the table.", "",
           "Every hook `NAME` has a header `hooks/core/NAME.h` declaring",
           "`ec_hook_core_NAME_func_t`, `has_core_NAME_hook()`,",
           "`register_core_NAME_hook_first(fn, closure)`, `register_core_NAME_hook_last(fn, closure)`",
           "and the core's call point `call_core_NAME_hook(...)`. A provider receives the closure it",
           "was registered with, then the arguments below.", "",
           "| hook | returns | chaining | provider arguments after the closure | fires |",
           "|---|---|---|---|---|"]
    for h in hooks:
        args = ", ".join(f"`{p.decl}`" for p in h.params) or "—"
        out.append(f"| `{h.name}` | `{h.ret}` | {h.rule} | {args} | {h.when} |")
    out.append("")
    out.append("Chaining rules: **all** runs every provider in list order; **first_nonzero** stops at")
    out.append("the first provider returning non-zero and returns that value (0 when none does);")
    out.append("**first_nonnull** returns the first non-NULL pointer (NULL when none does).")
    out.append("")
    out.append("## In the trace")
    out.append("")
    out.append("Each provider call is one `provider NAME` record, written when the provider returns:")
    out.append("`plugin=` the plugin whose `mtasim_module_init` registered it (`core` for the core's")
    out.append("own), `closure=` the label the plugin gave its closure with `mtasim_closure_label()`")
    out.append("(absent without one), the arguments as above (an `int *` shows the value after the")
    out.append("provider ran) and, for a non-void hook, `ret`. After the providers, the call point")
    out.append("itself is one `hook NAME` record with the arguments and the chained result. A")
    out.append("`message *` result shows as `ret_msg=ID`, any other pointer as `ret=NULL` or")
    out.append("`ret=non-NULL`: pointer values never reach the trace.")
    out.append("")
    return "\n".join(out)


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("table")
    ap.add_argument("--header-dir")
    ap.add_argument("--source")
    ap.add_argument("--docs")
    ap.add_argument("--list", action="store_true", help="print the hook names")
    a = ap.parse_args()
    hooks = read_table(a.table)
    if a.list:
        print("\n".join(h.name for h in hooks))
        return 0
    if a.header_dir:
        os.makedirs(a.header_dir, exist_ok=True)
        for h in hooks:
            write_if_changed(os.path.join(a.header_dir, h.name + ".h"), gen_header(h))
    if a.source:
        write_if_changed(a.source, gen_source(hooks))
    if a.docs:
        write_if_changed(a.docs, gen_docs(hooks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
