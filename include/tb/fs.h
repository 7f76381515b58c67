/*
 * fs.h — small file-system helpers every program needs.
 */
#ifndef TB_FS_H
#define TB_FS_H

#include <sys/types.h>

/**
 * Creates directory `path` and any missing parents with `mode` (directories that exist
 * are fine, whatever their mode). Returns 0, TB_ENAMETOOLONG, or the mkdir error
 * (-errno) naming the first component that could not be made.
 */
int tb_mkdir_p(const char *path, mode_t mode);

/** Like tb_mkdir_p for the directory part of `path` (everything before its last '/'). */
int tb_mkdir_parents(const char *path, mode_t mode);

#endif /* TB_FS_H */
