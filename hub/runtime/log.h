/* log.h - one line per event, with a level, to stderr. Thread-safe. */
#ifndef PH_LOG_H
#define PH_LOG_H

typedef enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;

void log_set_level(log_level level);
int log_level_parse(const char *name, log_level *level);
int log_enabled(log_level level);
void log_write(log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_E(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)
#define LOG_W(comp, ...) log_write(LOG_WARN, comp, __VA_ARGS__)
#define LOG_I(comp, ...) log_write(LOG_INFO, comp, __VA_ARGS__)
#define LOG_D(comp, ...)                                                                           \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, comp, __VA_ARGS__);                                               \
    } while (0)

#endif
