/*
 * suggest.h — "did you mean ...?" for names users mistype.
 */
#ifndef TB_SUGGEST_H
#define TB_SUGGEST_H

#include <stddef.h>

/**
 * The candidate closest to `word` by edit distance (insertions, deletions,
 * substitutions and adjacent transpositions), or NULL when none is close enough to be
 * a plausible typo: at most one edit for words up to 4 characters, two up to 8, three
 * beyond. Comparison is case-insensitive. `candidates` is borrowed; so is the result.
 */
const char *tb_suggest(const char *word, const char *const *candidates, size_t n);

/** Edit distance as tb_suggest measures it; strings longer than 64 bytes count as far apart. */
size_t tb_edit_distance(const char *a, const char *b);

#endif /* TB_SUGGEST_H */
