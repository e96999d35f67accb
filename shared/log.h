/* Leveled logging to stderr, with the program name; journald priorities when run
 * under systemd, a UTC timestamp otherwise. Control paths only: the per-packet path counts, it does not log. */
#ifndef LS_LOG_H
#define LS_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum ls_log_level { LS_LOG_ERR = 0, LS_LOG_WARN, LS_LOG_INFO, LS_LOG_DEBUG };

/* Also decides the line's prefix: a journald priority when stderr is the journal's
 * stream, else a timestamp ("2026-01-31T12:34:56.789Z "). */
void ls_log_init(const char *prog, enum ls_log_level level);
/* Timestamps on or off (after ls_log_init), for output compared byte for byte. */
void ls_log_set_timestamps(bool on);
void ls_log_set_level(enum ls_log_level level);
enum ls_log_level ls_log_get_level(void);
/* "error", "warn", "info", "debug". Returns the level or -1. */
int ls_log_level_parse(const char *s);
const char *ls_log_level_name(enum ls_log_level level);

void ls_log(enum ls_log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define ls_err(...)   ls_log(LS_LOG_ERR, __func__, __VA_ARGS__)
#define ls_warn(...)  ls_log(LS_LOG_WARN, __func__, __VA_ARGS__)
#define ls_info(...)  ls_log(LS_LOG_INFO, __func__, __VA_ARGS__)
#define ls_debug(...) ls_log(LS_LOG_DEBUG, __func__, __VA_ARGS__)

/* Rate limit for messages caused by outside input: at most `burst` per `period_us`;
 * the next message that passes says how many were suppressed. */
struct ls_ratelog {
	uint64_t window_start_us;
	uint32_t in_window;
	uint32_t suppressed;
};
void ls_log_rl(struct ls_ratelog *rl, enum ls_log_level level, const char *func,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define ls_warn_rl(rl, ...) ls_log_rl(rl, LS_LOG_WARN, __func__, __VA_ARGS__)

#endif
