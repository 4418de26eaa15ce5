/*
 * idxmap - 64-bit keys to array indexes (see idxmap.h)
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "idxmap.h"
#include "panic.h"

/* mix - spread a key over the slots (keys are often small or sequential) */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* text_hash - eight octets per multiply, then a final mix */
uint64_t text_hash(const char *s, size_t len)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    }
    return mix(h);
}

void idxmap_init(struct idxmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void idxmap_free(struct idxmap *m)
{
    free(m->slots);
    idxmap_init(m);
}

/* scan - the value of the next slot from *pos holding key; IDXMAP_NONE at
 * the empty slot that ends the sequence */
static uint32_t scan(const struct idxmap *m, uint64_t key, size_t *pos)
{
    /* At most half full: an empty slot ends every probe sequence. */
    for (size_t probes = 0; probes < m->cap; probes++) {
        const struct idxmap_slot *sl = &m->slots[*pos];
        if (sl->value == IDXMAP_NONE)
            return IDXMAP_NONE;
        *pos = (*pos + 1) & (m->cap - 1);
        if (sl->key == key)
            return sl->value;
    }
    return IDXMAP_NONE;
}

uint32_t idxmap_first(const struct idxmap *m, uint64_t key, size_t *pos)
{
    if (m->cap == 0)
        return IDXMAP_NONE;
    *pos = (size_t)mix(key) & (m->cap - 1);
    return scan(m, key, pos);
}

uint32_t idxmap_next(const struct idxmap *m, uint64_t key, size_t *pos)
{
    if (m->cap == 0)
        return IDXMAP_NONE;
    return scan(m, key, pos);
}

uint32_t idxmap_get(const struct idxmap *m, uint64_t key)
{
    size_t pos;
    return idxmap_first(m, key, &pos);
}

/* place - store (key, value) in the first empty slot of its sequence */
static void place(struct idxmap_slot *slots, size_t cap, uint64_t key, uint32_t value)
{
    size_t i = (size_t)mix(key) & (cap - 1);
    while (slots[i].value != IDXMAP_NONE)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].value = value;
}

void idxmap_put(struct idxmap *m, uint64_t key, uint32_t value)
{
    assert(value != IDXMAP_NONE);
    if (2 * (m->count + 1) > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct idxmap_slot *slots = malloc(cap * sizeof *slots);
        if (slots == NULL)
            util_panic("idxmap_put", "out of memory");
        for (size_t i = 0; i < cap; i++)
            slots[i].value = IDXMAP_NONE;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].value != IDXMAP_NONE)
                place(slots, cap, m->slots[i].key, m->slots[i].value);
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    place(m->slots, m->cap, key, value);
    m->count++;
}
