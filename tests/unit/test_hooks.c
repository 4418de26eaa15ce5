/*
 * test_hooks - the generated hook API and the provider registry
 *
 * Providers are called in list order (register_..._first prepends,
 * register_..._last appends), each with its own closure; has_ reports
 * registration; int hooks stop at the first non-zero result; the lists
 * are emptied between runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "hooks/core/post_initiate_connection_smtp.h"
#include "hooks/core/veto_host_connection.h"

static char calls[64];
static int ncalls;
static int last_fd[8];

static void provider(void *closure, domain_record *dr, int slot, struct timeval *now, int fd)
{
    (void)dr; (void)slot; (void)now;
    const char *tag = closure;
    calls[ncalls] = tag[0];
    last_fd[ncalls] = fd;
    ncalls++;
    calls[ncalls] = '\0';
}

static void setup(void)
{
    hooks_reset_all();
    ncalls = 0;
    calls[0] = '\0';
}

START_TEST(test_has_reflects_registration)
{
    ck_assert_int_eq(has_core_post_initiate_connection_smtp_hook(), 0);
    register_core_post_initiate_connection_smtp_hook_last(provider, "a");
    ck_assert_int_ne(has_core_post_initiate_connection_smtp_hook(), 0);
    hooks_reset_all();
    ck_assert_int_eq(has_core_post_initiate_connection_smtp_hook(), 0);
}
END_TEST

START_TEST(test_first_and_last_order)
{
    register_core_post_initiate_connection_smtp_hook_last(provider, "b");
    register_core_post_initiate_connection_smtp_hook_last(provider, "c");
    register_core_post_initiate_connection_smtp_hook_first(provider, "a");
    register_core_post_initiate_connection_smtp_hook_last(provider, "d");
    register_core_post_initiate_connection_smtp_hook_first(provider, "0");
    call_core_post_initiate_connection_smtp_hook(NULL, 0, NULL, 7);
    ck_assert_str_eq(calls, "0abcd");
    for (int i = 0; i < ncalls; i++)
        ck_assert_int_eq(last_fd[i], 7);
}
END_TEST

START_TEST(test_arguments_and_closure_passed)
{
    domain_record dr = { .domain = "example.com" };
    struct timeval now = { 1585180800, 40000 };
    register_core_post_initiate_connection_smtp_hook_last(provider, "x");
    call_core_post_initiate_connection_smtp_hook(&dr, 3, &now, CONN_ERROR(CONN_ERR_CONNECT));
    ck_assert_str_eq(calls, "x");
    ck_assert_int_eq(last_fd[0], -CONN_ERR_CONNECT);
}
END_TEST

struct veto_closure {
    int result;
    int *counter;
};

static int veto(void *closure, const char *host, domain_record *dr, int slot, int max, int cur)
{
    (void)host; (void)dr; (void)slot; (void)max; (void)cur;
    struct veto_closure *v = closure;
    (*v->counter)++;
    return v->result;
}

START_TEST(test_first_nonzero_stops_the_chain)
{
    int count = 0;
    struct veto_closure zero = { 0, &count }, two = { 2, &count }, three = { 3, &count };
    ck_assert_int_eq(call_core_veto_host_connection_hook("mx", NULL, 0, 32, 0), 0);
    register_core_veto_host_connection_hook_last(veto, &zero);
    register_core_veto_host_connection_hook_last(veto, &two);
    register_core_veto_host_connection_hook_last(veto, &three);
    ck_assert_int_eq(call_core_veto_host_connection_hook("mx", NULL, 0, 32, 0), 2);
    ck_assert_int_eq(count, 2);     /* the third never ran */
    hooks_reset_all();
    count = 0;
    register_core_veto_host_connection_hook_last(veto, &zero);
    ck_assert_int_eq(call_core_veto_host_connection_hook("mx", NULL, 0, 32, 0), 0);
    ck_assert_int_eq(count, 1);
}
END_TEST

START_TEST(test_registering_plugin_is_recorded)
{
    hook_set_registering_plugin("plugin-a.so");
    register_core_post_initiate_connection_smtp_hook_last(provider, "a");
    hook_set_registering_plugin(NULL);
    register_core_post_initiate_connection_smtp_hook_last(provider, "b");
    struct hook_list *l = NULL;
    for (int i = 0; hook_lists[i]; i++)
        if (strcmp(hook_lists[i]->name, "post_initiate_connection_smtp") == 0)
            l = hook_lists[i];
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->n, 2);
    ck_assert_str_eq(l->v[0].plugin, "plugin-a.so");
    ck_assert_str_eq(l->v[1].plugin, "core");
}
END_TEST

START_TEST(test_conn_err_names_round_trip)
{
    for (int c = 1; c <= CONN_ERR__MAX; c++) {
        const char *name = conn_err_name(c);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(conn_err_from_name(name), c);
        char alt[64];
        snprintf(alt, sizeof alt, "CONN_ERROR_%s", name + strlen("CONN_ERR_"));
        ck_assert_int_eq(conn_err_from_name(alt), c);
    }
    ck_assert_int_eq(conn_err_from_name("CONN_ERR_NOPE"), 0);
    char buf[96];
    ck_assert_str_eq(conn_err_format(CONN_ERR_NO_MXS_REACHABLE | CONN_ACTION_REQUEUE1, buf, sizeof buf),
                     "CONN_ERR_NO_MXS_REACHABLE|CONN_ACTION_REQUEUE1");
    ck_assert_int_eq(CONN_ERROR(CONN_ERR_BIND | CONN_ACTION_PURGE_DOMAIN), -CONN_ERR_BIND);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_has_reflects_registration);
    tcase_add_test(tc, test_first_and_last_order);
    tcase_add_test(tc, test_arguments_and_closure_passed);
    tcase_add_test(tc, test_first_nonzero_stops_the_chain);
    tcase_add_test(tc, test_registering_plugin_is_recorded);
    tcase_add_test(tc, test_conn_err_names_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
