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

RULES = {"all", "first_nonzero", "first_nonnull", "first_zero"}


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
        names, self.ret, self.rule, params, self.when = [f.strip() for f in fields]
        self.where = where
        names = names.split()
        if not names or not all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n) for n in names):
            raise SystemExit(f"{where}: bad hook name field '{' '.join(names)}'")
        self.name, self.aliases = names[0], names[1:]
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
    names = [n for h in hooks for n in [h.name] + h.aliases]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: a hook is listed twice")
    return hooks


# How the trace shows an argument, by type (after the :tag rules).  Each
# maps to a builder of core/trace.c; pointers never reach the trace as such.
TYPE_RULES = {
    "domain_record *": "mta_tb_domain(&tb, {n});",
    "message *": "mta_tb_message(&tb, {n});",
    "ec_message *": "mta_tb_ec_message(&tb, {n});",
    "abstract_message *": "mta_tb_ec_message(&tb, {n});",
    "connection_handle *": "mta_tb_conn(&tb, {n});",
    "host_record *": 'mta_tb_host(&tb, "{n}", {n});',
    "struct sockaddr *": 'mta_tb_sockaddr(&tb, "{n}", {n});',
    "Skiplist *": 'mta_tb_skiplist(&tb, "{n}", {n});',
    "mail_queue *": "mta_tb_mail_queue(&tb, {n});",
    "delivery_construct *": "mta_tb_dc(&tb, {n});",
    "smtp_client_args *": 'mta_tb_args(&tb, "{n}", {n});',
    "accept_construct *": "mta_tb_accept(&tb, {n});",
    "validate_context *": "mta_tb_vctx(&tb, {n});",
    "struct ec_auth_info *": "mta_tb_auth_info(&tb, {n});",
}


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
        elif tag == "ipv4":
            out.append(f'mta_tb_ipv4(&tb, "{p.name}", {p.name});')
        elif tag is not None:
            raise SystemExit(f"{hook.where}: unknown tag ':{tag}'")
        elif p.ctype in TYPE_RULES:
            out.append(TYPE_RULES[p.ctype].format(n=p.name))
        elif p.ctype == "int" and p.name in ("binding_slot", "slot", "binding", "binding_id"):
            out.append(f"mta_tb_binding(&tb, {p.name});")
        elif p.ctype in ("const char *", "char *") and nxt is not None and nxt.ctype == "int" \
                and nxt.name == p.name + "_len":
            out.append(f'mta_tb_strn(&tb, "{p.name}", {p.name}, {nxt.name});')
            i += 1
        elif p.ctype in ("const char *", "char *"):
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
        elif p.ctype == "int" and p.name in ("binding_slot", "slot", "binding", "binding_id") \
                and p.tag not in ("connfd", "connerr", "ipv4"):
            names.append("binding")
        elif p.ctype == "message *":
            names += ["msg", "rcpt"]
        elif p.ctype in ("ec_message *", "abstract_message *"):
            names += ["msg", "rcpt", "from", "size"]       # mta_tb_ec_message
        elif p.ctype == "connection_handle *":
            names += ["conn", "addr", "domain"]
        elif p.ctype == "delivery_construct *":               # mta_tb_dc
            names += ["conn", "addr", "domain", "msg", "rcpt", "from", "size"]
        elif p.ctype == "mail_queue *":                       # mta_tb_mail_queue
            names.append("domain")
        elif p.ctype == "accept_construct *":                 # mta_tb_accept
            names += ["conn", "addr"]
        elif p.ctype == "validate_context *":                 # mta_tb_vctx
            names.append("code")
        elif p.ctype == "struct ec_auth_info *":              # mta_tb_auth_info
            names += ["user", "secure"]
        else:
            names.append(p.name)
            if p.ctype == "const char *" and nxt is not None and nxt.ctype == "int" \
                    and nxt.name == p.name + "_len":
                i += 1
        i += 1
    if hook.ret in ("message *", "ec_message *", "abstract_message *"):
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
    if hook.ret in ("ec_message *", "abstract_message *"):
        # A message is only taken from the active queue of (dr, binding_slot):
        # shown by id when it is there, never read otherwise.
        names = [p.name for p in hook.params]
        if "dr" not in names or "binding_slot" not in names:
            raise SystemExit(f"{hook.where}: a hook returning a message needs dr and binding_slot")
        return ['mta_tb_ret_active(&tb, dr, binding_slot, ret);']
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


def gen_alias_header(hook, alias):
    """hooks/core/ALIAS.h: the documentation's other name for hook."""
    guard = f"MTASIM_HOOKS_CORE_{alias.upper()}_H"
    n = hook.name
    return f"""/* Generated by core/hooks/gen_hooks.py from core/hooks/hooks.table: do not edit. */
/*
 * {alias} - the name Momentum's documentation also gives the hook {n}:
 * every function and type below is {n}'s (hooks/core/{n}.h).
 */
#ifndef {guard}
#define {guard}

#include "hooks/core/{n}.h"

typedef {hook.ftype} ec_hook_core_{alias}_func_t;
#define has_core_{alias}_hook has_core_{n}_hook
#define register_core_{alias}_hook_first register_core_{n}_hook_first
#define register_core_{alias}_hook_last register_core_{n}_hook_last
#define call_core_{alias}_hook call_core_{n}_hook

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
            zero = {"first_nonnull": "NULL", "first_zero": "1"}.get(h.rule, "0")
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
        if h.rule == "first_zero":
            out.append("        if (ret == 0) break;")
        elif nonvoid:
            out.append("        if (ret) break;")
        out.append("    }")
        out.append("    if (mta_tracing())")
        out.append(f"        record_{n}(NULL{rargs});")
        if nonvoid:
            out.append("    return ret;")
        out.append("}\n")
    return "\n".join(out)


def gen_docs(hooks, notes):
    out = ["# Hook reference", "",
           "Generated from `core/hooks/hooks.table` by `core/hooks/gen_hooks.py`; do not edit.",
           "A test checks that this page matches the table.", "",
           "Every hook `NAME` has a header `hooks/core/NAME.h` declaring",
           "`ec_hook_core_NAME_func_t`, `has_core_NAME_hook()`,",
           "`register_core_NAME_hook_first(fn, closure)`, `register_core_NAME_hook_last(fn, closure)`",
           "and the core's call point `call_core_NAME_hook(...)`. A provider receives the closure it",
           "was registered with, then the arguments below: the names, types and order of Momentum 3's",
           "hook pages. The types are described in the headers named in the section",
           "[The documented types in mtasim](#the-documented-types-in-mtasim) below.", "",
           "| hook | returns | chaining | provider arguments after the closure | fires |",
           "|---|---|---|---|---|"]
    for h in hooks:
        args = ", ".join(f"`{p.decl}`" for p in h.params) or "—"
        name = f"`{h.name}`" + "".join(f" (also `{a}`)" for a in h.aliases)
        out.append(f"| {name} | `{h.ret}` | {h.rule} | {args} | {h.when} |")
    out.append("")
    out.append("Chaining rules: **all** runs every provider in list order; **first_nonzero** stops at")
    out.append("the first provider returning non-zero and returns that value (0 when none does);")
    out.append("**first_nonnull** returns the first non-NULL pointer (NULL when none does);")
    out.append("**first_zero** stops at the first provider returning 0 and returns 0 (1 when none does).")
    out.append("A hook listed with another name has a header of that name too, declaring that name's")
    out.append("type and functions as the hook's (Momentum documents `mail_queue_maintain` as")
    out.append("`__mail_queue_maintain`).")
    out.append("")
    out.append("## In the trace")
    out.append("")
    out.append("Each provider call is one `provider NAME` record, written when the provider returns:")
    out.append("`plugin=` the plugin whose `mtasim_module_init` registered it (`core` for the core's")
    out.append("own), `closure=` the label the plugin gave its closure with `mtasim_closure_label()`")
    out.append("(absent without one), the arguments as above (an `int *` shows the value after the")
    out.append("provider ran) and, for a non-void hook, `ret`. After the providers, the call point")
    out.append("itself is one `hook NAME` record with the arguments and the chained result. A")
    out.append("message result shows as `ret_msg=ID` when it is in the active queue of the call's")
    out.append("(`dr`, `binding_slot`), else as `ret=not-in-queue` (the core compares it, never reads")
    out.append("it); any other pointer as `ret=NULL` or `ret=non-NULL`: pointer values never reach")
    out.append("the trace. A structure argument shows")
    out.append("as what identifies it: a message as `msg=ID` (and `rcpt=` in the log hooks), a")
    out.append("domain as `domain=`, a connection or `delivery_construct` as `conn=FD addr=`, a")
    out.append("`host_record` as `host=NAME`, a `struct sockaddr` as the address, a `Skiplist`")
    out.append("as its size, `smtp_client_args` as the parameters the command will carry, an")
    out.append("`accept_construct` as `conn=FD addr=`, a `validate_context` as the `code=` a")
    out.append("provider set (when one did).")
    out.append("")
    return "\n".join(out) + notes


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
        print("\n".join(n for h in hooks for n in [h.name] + h.aliases))
        return 0
    if a.header_dir:
        os.makedirs(a.header_dir, exist_ok=True)
        for h in hooks:
            write_if_changed(os.path.join(a.header_dir, h.name + ".h"), gen_header(h))
            for alias in h.aliases:
                write_if_changed(os.path.join(a.header_dir, alias + ".h"),
                                 gen_alias_header(h, alias))
    if a.source:
        write_if_changed(a.source, gen_source(hooks))
    if a.docs:
        # The hand-written part: what the Momentum pages leave open and how
        # mtasim decides it, next to the table.
        notes_path = os.path.join(os.path.dirname(os.path.abspath(a.table)), "hooks_notes.md")
        with open(notes_path, encoding="utf-8") as f:
            notes = f.read()
        write_if_changed(a.docs, gen_docs(hooks, "\n" + notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
