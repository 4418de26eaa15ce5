/*
 * strtab - interned strings (see strtab.h)
 *
 * Open addressing with linear probing over (hash, pointer, length) slots,
 * kept at most half full; copies are bump-allocated from a chain of blocks.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idxmap.h"
#include "mta_internal.h"
#include "strtab.h"

#define STRTAB_BLOCK (64u << 10)

struct strtab_slot {
    uint64_t hash;
    const char *str;        /* NULL = empty */
    size_t len;
};

struct strtab_block {
    struct strtab_block *next;
    size_t used, cap;
    char data[];
};

struct strtab {
    struct strtab_slot *slots;
    size_t cap;             /* a power of two */
    size_t count;
    struct strtab_block *blocks;    /* the newest first */
};

struct strtab *strtab_create(void)
{
    struct strtab *t = calloc(1, sizeof *t);
    if (t == NULL)
        mta_panic("strtab_create", "out of memory");
    t->cap = 256;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (t->slots == NULL)
        mta_panic("strtab_create", "out of memory");
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
    free(t->slots);
    free(t);
}

size_t strtab_count(const struct strtab *t)
{
    return t->count;
}

/* slot_for - the slot holding text, or the empty slot where it goes */
static struct strtab_slot *slot_for(struct strtab_slot *slots, size_t cap, uint64_t h,
                                    const char *text, size_t len)
{
    size_t i = (size_t)h & (cap - 1);
    /* At most half full: an empty slot ends every probe. */
    for (size_t probes = 0; probes < cap; probes++) {
        struct strtab_slot *sl = &slots[i];
        if (sl->str == NULL ||
            (sl->hash == h && sl->len == len && memcmp(sl->str, text, len) == 0))
            return sl;
        i = (i + 1) & (cap - 1);
    }
    mta_panic("strtab", "table full");
}

static void grow(struct strtab *t)
{
    size_t cap = t->cap * 2;
    struct strtab_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        mta_panic("strtab", "out of memory");
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].str != NULL)
            *slot_for(slots, cap, t->slots[i].hash, t->slots[i].str, t->slots[i].len) =
                t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
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
            mta_panic("strtab", "out of memory");
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
    struct strtab_slot *sl = slot_for(t->slots, t->cap, h, text, len);
    if (sl->str != NULL)
        return sl->str;
    if (t->count >= STRTAB_MAX_STRINGS)
        mta_panic("strtab", "more than %u distinct strings", STRTAB_MAX_STRINGS);
    if (2 * (t->count + 1) > t->cap) {
        grow(t);
        sl = slot_for(t->slots, t->cap, h, text, len);
    }
    sl->hash = h;
    sl->len = len;
    sl->str = store(t, text, len);
    t->count++;
    return sl->str;
}
