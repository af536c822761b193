/* log.h: leveled logging to stderr (journald picks it up), shared by the wire's threads. */
#ifndef BITW_LOG_H
#define BITW_LOG_H

enum wlog_level { WLOG_ERR = 0, WLOG_WARN = 1, WLOG_INFO = 2, WLOG_DEBUG = 3 };

extern int wlog_level_max;  /* messages above this level are skipped */

/* "error", "warn", "info", "debug" -> level, or -1. */
int wlog_level_parse(const char *s);
void wlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define wlog_debug(...) do { if (wlog_level_max >= WLOG_DEBUG) wlog(WLOG_DEBUG, __VA_ARGS__); } while (0)

#endif
