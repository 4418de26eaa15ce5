/*
 * idxmap - 64-bit keys to array indexes, for tables that grow with the world
 *
 * SYNOPSIS
 *   struct idxmap map;
 *   idxmap_init(&map);
 *   idxmap_put(&map, addr, index);                 // a key not yet present
 *   uint32_t i = idxmap_get(&map, addr);           // IDXMAP_NONE if absent
 *
 *   // Keys that are hashes (text_hash of a name) may collide: the caller
 *   // confirms each candidate.
 *   size_t pos;
 *   for (uint32_t i = idxmap_first(&map, h, &pos); i != IDXMAP_NONE;
 *        i = idxmap_next(&map, h, &pos))
 *       if (strcmp(names[i], name) == 0) ...
 *   idxmap_free(&map);
 *
 * DESCRIPTION
 *   The tables it indexes (hosts, links, DNS names, domains, per-host
 *   counters) keep their entries in arrays in creation order; the map
 *   only finds an entry.  It replaced linear scans that made a world of a
 *   thousand domains spend a third of its time in strcmp
 *   (docs/performance.md).  Open addressing with linear probing, at most
 *   half full; it is only probed, never iterated, so its layout cannot
 *   reach a trace.  There is no removal: the tables only grow.
 *
 *   text_hash() is the 64-bit hash used for text keys here and in strtab.
 *
 * DIAGNOSTICS
 *   Exhausted memory is fatal (util_panic, panic.h).
 */
#ifndef MTASIM_IDXMAP_H
#define MTASIM_IDXMAP_H

#include <stddef.h>
#include <stdint.h>

#define IDXMAP_NONE UINT32_MAX

struct idxmap_slot {
    uint64_t key;
    uint32_t value;         /* IDXMAP_NONE = empty slot */
};

struct idxmap {
    struct idxmap_slot *slots;
    size_t cap;             /* 0 or a power of two */
    size_t count;
};

void idxmap_init(struct idxmap *m);
void idxmap_free(struct idxmap *m);
void idxmap_put(struct idxmap *m, uint64_t key, uint32_t value);
uint32_t idxmap_get(const struct idxmap *m, uint64_t key);
uint32_t idxmap_first(const struct idxmap *m, uint64_t key, size_t *pos);
uint32_t idxmap_next(const struct idxmap *m, uint64_t key, size_t *pos);

uint64_t text_hash(const char *s, size_t len);

#endif
