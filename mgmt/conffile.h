/* conffile.h: bitwd's service configuration file, "key = value" lines named like its long flags. */
#pragma once

#include <getopt.h>
#include <stddef.h>

/*
 * If argv has --config FILE (or --config=FILE), returns a new argument vector
 * with FILE's settings turned into flags placed before the command line's, so
 * that a flag given on the command line wins; without --config, argv itself.
 * Keys are the long names in known (not "config"); a flag that takes no value
 * is written "key = yes" or "key = no". Blank lines and lines starting with #
 * are skipped. NULL on an unreadable file or a bad line (err names FILE:LINE).
 * The vector and its strings live as long as the process.
 */
char **conffile_argv(int argc, char **argv, const struct option *known, int *new_argc, char *err, size_t errlen);
