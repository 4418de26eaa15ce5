/*
 * test_isolate - crash isolation: what a child leaves for its parent
 *
 * A child that reports, crashes (in the core or in a plugin's provider),
 * hangs or exits is told apart by isolate_call(), and run_result_explain()
 * turns each into the documented exit code and message: 4 naming the
 * plugin, the hook and the virtual time when a plugin was running, 3
 * (internal error) when the core itself was.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook_registry.h"
#include "hooks/core/log_delivery_v1.h"
#include "isolate.h"

/* reporter - a well-behaved child */
static char *reporter(void *arg, size_t *len)
{
    (void)arg;
    *len = 5;
    return strdup("hello");
}

/* crash_in_core - a fault with no provider on the stack */
static char *crash_in_core(void *arg, size_t *len)
{
    (void)arg; (void)len;
    raise(SIGSEGV);
    return NULL;
}

/* crashing_provider - a plugin's provider that faults */
static void crashing_provider(void *closure, ec_message *msg, domain_record *dr, struct timeval *now,
                              const char *note, int note_len)
{
    (void)closure; (void)msg; (void)dr; (void)now; (void)note; (void)note_len;
    raise(SIGSEGV);
}

/* crash_in_plugin - register as plugin p.so, then call the hook */
static char *crash_in_plugin(void *arg, size_t *len)
{
    (void)arg; (void)len;
    hooks_reset_all();
    hook_set_registering_plugin("p.so");
    register_core_log_delivery_v1_hook_last(crashing_provider, NULL);
    hook_set_registering_plugin(NULL);
    call_core_log_delivery_v1_hook(NULL, NULL, NULL, "250 ok", 6);
    return NULL;
}

/* hang - never returns */
static char *hang(void *arg, size_t *len)
{
    (void)arg; (void)len;
    for (volatile int forever = 1; forever;)
        pause();
    return NULL;
}

/* exits - exit(5) before reporting */
static char *exits(void *arg, size_t *len)
{
    (void)arg; (void)len;
    exit(5);
}

START_TEST(test_reported)
{
    struct isolate_outcome out;
    isolate_call(reporter, NULL, 10, &out);
    ck_assert_int_eq(out.how, ISOLATE_REPORTED);
    ck_assert_str_eq(out.payload, "hello");
    isolate_outcome_free(&out);
}
END_TEST

START_TEST(test_core_crash_is_internal_error)
{
    struct isolate_outcome out;
    isolate_call(crash_in_core, NULL, 10, &out);
    ck_assert_int_eq(out.how, ISOLATE_SIGNALED);
    ck_assert_int_eq(out.signal, SIGSEGV);
    ck_assert_int_eq(out.watch.depth, 0);
    struct run_result r;
    memset(&r, 0, sizeof r);
    run_result_explain(0, 10, &out, &r);
    ck_assert_int_eq(r.exit_code, 3);
    ck_assert_int_eq(r.verdict, RUN_ERROR);
    ck_assert_msg(strstr(r.error, "the core crashed with SIGSEGV") != NULL, "%s", r.error);
    run_result_free(&r);
    isolate_outcome_free(&out);
}
END_TEST

START_TEST(test_plugin_crash_names_plugin_and_hook)
{
    struct isolate_outcome out;
    isolate_call(crash_in_plugin, NULL, 10, &out);
    ck_assert_int_eq(out.how, ISOLATE_SIGNALED);
    ck_assert_int_eq(out.watch.depth, 1);
    ck_assert_str_eq(out.watch.plugin, "p.so");
    ck_assert_str_eq(out.watch.hook, "log_delivery_v1");
    struct run_result r;
    memset(&r, 0, sizeof r);
    run_result_explain(0, 10, &out, &r);
    ck_assert_int_eq(r.exit_code, 4);
    ck_assert_str_eq(r.error, "plugin p.so crashed with SIGSEGV in hook log_delivery_v1 "
                              "at 00:00:00.000000");
    ck_assert_str_eq(r.why, "plugin crashed");
    run_result_free(&r);
    isolate_outcome_free(&out);
}
END_TEST

START_TEST(test_hang_is_killed)
{
    struct isolate_outcome out;
    isolate_call(hang, NULL, 0.3, &out);
    ck_assert_int_eq(out.how, ISOLATE_TIMED_OUT);
    ck_assert_ptr_null(out.payload);
    struct run_result r;
    memset(&r, 0, sizeof r);
    run_result_explain(0, 0.3, &out, &r);
    ck_assert_int_eq(r.exit_code, 3);       /* no plugin was running */
    run_result_free(&r);
}
END_TEST

START_TEST(test_exit_is_seen)
{
    struct isolate_outcome out;
    isolate_call(exits, NULL, 10, &out);
    ck_assert_int_eq(out.how, ISOLATE_EXITED);
    ck_assert_int_eq(out.exit_status, 5);
    ck_assert_int_ne(out.exit_called, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("isolate");
    TCase *tc = tcase_create("isolate");
    tcase_add_test(tc, test_reported);
    tcase_add_test(tc, test_core_crash_is_internal_error);
    tcase_add_test(tc, test_plugin_crash_names_plugin_and_hook);
    tcase_add_test(tc, test_hang_is_killed);
    tcase_add_test(tc, test_exit_is_seen);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
