/*
 * strtab - interned strings (see strtab.h)
 *
 * The copies are bump-allocated from a chain of blocks and listed in
 * creation order; idxmap finds one by its text_hash.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idxmap.h"
#include "panic.h"
#include "strtab.h"

#define STRTAB_BLOCK (64u << 10)

struct strtab_entry {
    const char *str;
    size_t len;
};

struct strtab_block {
    struct strtab_block *next;
    size_t used, cap;
    char data[];
};

struct strtab {
    struct strtab_entry *entries;   /* in creation order */
    size_t count, cap;
    struct idxmap index;            /* text_hash -> entries[] */
    struct strtab_block *blocks;    /* the newest first */
};

struct strtab *strtab_create(void)
{
    struct strtab *t = calloc(1, sizeof *t);
    if (t == NULL)
        util_panic("strtab_create", "out of memory");
    idxmap_init(&t->index);
    return t;
}

void strtab_destroy(struct strtab *t)
{
    if (t == NULL)
        return;
    while (t->blocks != NULL) {
        struct strtab_block *b = t->blocks;
        t->blocks = b->next;
        free(b);
    }
    free(t->entries);
    idxmap_free(&t->index);
    free(t);
}

size_t strtab_count(const struct strtab *t)
{
    return t->count;
}

/* store - a stable NUL-terminated copy of text */
static const char *store(struct strtab *t, const char *text, size_t len)
{
    struct strtab_block *b = t->blocks;
    if (b == NULL || b->cap - b->used < len + 1) {
        /* A text longer than a quarter block gets a block of its own, so a
         * long one never wastes the rest of a shared block. */
        size_t cap = len + 1 > STRTAB_BLOCK / 4 ? len + 1 : STRTAB_BLOCK;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            util_panic("strtab", "out of memory");
        b->used = 0;
        b->cap = cap;
        if (cap == STRTAB_BLOCK || t->blocks == NULL) {
            b->next = t->blocks;
            t->blocks = b;
        } else {
            /* Keep the shared block with room at the head. */
            b->next = t->blocks->next;
            t->blocks->next = b;
        }
    }
    char *s = b->data + b->used;
    memcpy(s, text, len);
    s[len] = '\0';
    b->used += len + 1;
    return s;
}

const char *strtab_intern(struct strtab *t, const char *text, size_t len)
{
    assert(text != NULL || len == 0);
    if (len == 0)
        return "";
    uint64_t h = text_hash(text, len);
    size_t pos;
    for (uint32_t i = idxmap_first(&t->index, h, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&t->index, h, &pos))
        if (t->entries[i].len == len && memcmp(t->entries[i].str, text, len) == 0)
            return t->entries[i].str;
    if (t->count >= STRTAB_MAX_STRINGS)
        util_panic("strtab", "more than %u distinct strings", STRTAB_MAX_STRINGS);
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->entries = realloc(t->entries, t->cap * sizeof *t->entries);
        if (t->entries == NULL)
            util_panic("strtab", "out of memory");
    }
    const char *copy = store(t, text, len);
    t->entries[t->count] = (struct strtab_entry){ copy, len };
    idxmap_put(&t->index, h, (uint32_t)t->count);
    t->count++;
    return copy;
}
