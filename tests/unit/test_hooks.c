/*
 * test_hooks - the generated hook API and the provider registry
 *
 * Providers are called in list order (register_..._first prepends,
 * register_..._last appends), each with its own closure; has_ reports
 * registration; int hooks stop at the first non-zero result (first_zero
 * hooks at the first 0); a documented alias (__mail_queue_maintain) is the
 * same hook; the lists are emptied between runs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "hooks/core/__mail_queue_maintain.h"
#include "hooks/core/mail_queue_insert_active.h"
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

static int veto(void *closure, host_record *host, domain_record *dr, int slot, int max, int cur)
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
    host_record mx = { .name = "mx" };
    ck_assert_int_eq(call_core_veto_host_connection_hook(&mx, NULL, 0, 32, 0), 0);
    register_core_veto_host_connection_hook_last(veto, &zero);
    register_core_veto_host_connection_hook_last(veto, &two);
    register_core_veto_host_connection_hook_last(veto, &three);
    ck_assert_int_eq(call_core_veto_host_connection_hook(&mx, NULL, 0, 32, 0), 2);
    ck_assert_int_eq(count, 2);     /* the third never ran */
    const char *plugin = NULL;
    ck_assert_str_eq(hook_last_left(&plugin), "veto_host_connection");
    ck_assert_str_eq(plugin, "core");
    hooks_reset_all();
    count = 0;
    register_core_veto_host_connection_hook_last(veto, &zero);
    ck_assert_int_eq(call_core_veto_host_connection_hook(&mx, NULL, 0, 32, 0), 0);
    ck_assert_int_eq(count, 1);
}
END_TEST

static int insert_observer(void *closure, mail_queue *mq, abstract_message *message)
{
    (void)mq; (void)message;
    struct veto_closure *v = closure;
    (*v->counter)++;
    return v->result;
}

START_TEST(test_first_zero_stops_at_zero)
{
    int count = 0;
    struct veto_closure one = { 1, &count }, zero = { 0, &count }, seven = { 7, &count };
    /* No provider: 1, the default inserted it. */
    ck_assert_int_eq(call_core_mail_queue_insert_active_hook(NULL, NULL), 1);
    register_core_mail_queue_insert_active_hook_last(insert_observer, &one);
    register_core_mail_queue_insert_active_hook_last(insert_observer, &one);
    ck_assert_int_eq(call_core_mail_queue_insert_active_hook(NULL, NULL), 1);
    ck_assert_int_eq(count, 2);
    register_core_mail_queue_insert_active_hook_first(insert_observer, &zero);
    register_core_mail_queue_insert_active_hook_last(insert_observer, &seven);
    count = 0;
    ck_assert_int_eq(call_core_mail_queue_insert_active_hook(NULL, NULL), 0);
    ck_assert_int_eq(count, 1);     /* the 0 stopped the chain at once */
}
END_TEST

static int maintain(void *closure, domain_record *dr, int slot, Skiplist *sl,
                    struct timeval *now, int goalsz, int reserve)
{
    (void)dr; (void)slot; (void)sl; (void)now; (void)reserve;
    *(int *)closure = goalsz;
    return 5;
}

START_TEST(test_documented_alias_is_the_same_hook)
{
    int seen = 0;
    /* Registered under the documented name, called under mtasim's. */
    ec_hook_core___mail_queue_maintain_func_t fn = maintain;
    register_core___mail_queue_maintain_hook_last(fn, &seen);
    ck_assert_int_ne(has_core_mail_queue_maintain_hook(), 0);
    ck_assert_int_eq(call_core_mail_queue_maintain_hook(NULL, 0, NULL, NULL, 9, 0), 5);
    ck_assert_int_eq(seen, 9);
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
    tcase_add_test(tc, test_first_zero_stops_at_zero);
    tcase_add_test(tc, test_documented_alias_is_the_same_hook);
    tcase_add_test(tc, test_registering_plugin_is_recorded);
    tcase_add_test(tc, test_conn_err_names_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
