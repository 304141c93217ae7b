/* hub_config.c - see hub_config.h and docs/configuration.md. */
#include "cnode/hub_config.h"

#include <string.h>

static const char *const hub_fields[] = {
    "hub_id",
    "child_specs",
    "hooks",
    "distribution_strategy",
    "redundancy_strategy",
    "migration_strategy",
    "synchronization_strategy",
    "partition_tolerance_strategy",
    "hubs_discover_interval",
    "deadlock_recovery_timeout",
    "storage_purge_interval",
    "migr_base_timeout",
    "dsup_max_restarts",
    "dsup_max_seconds",
    "dsup_shutdown_timeout",
    "beam_discovery", /* ours: not in %ProcessHub{} */
    "hook_timeout",   /* ours */
};

/* The strategy types this version runs (the first is the default). The
 * distribution types are checked when the hub starts: a library may add
 * more (include/processhub/strategy.h). */
static const struct {
    const char *field, *types[3];
} strategies[] = {
    {"redundancy_strategy", {"singularity", "replication"}},
    {"migration_strategy", {"cold_swap", "hot_swap"}},
    {"synchronization_strategy", {"pubsub", "gossip"}},
};

int hub_config_is_field(const char *key)
{
    for (size_t i = 0; i < sizeof hub_fields / sizeof hub_fields[0]; i++)
        if (strcmp(key, hub_fields[i]) == 0)
            return 1;
    return 0;
}

static int fail(char *err, size_t size, const char *field, const char *problem)
{
    snprintf(err, size, "config field \"%s\": %s", field, problem);
    return -1;
}

/* JSON -> Erlang term: integers, floats, strings as binaries, arrays as
 * lists, objects as maps with binary keys, true/false, null as nil. */
static int json_to_term(ph_buf *b, json_t *v)
{
    size_t i;
    const char *k;
    json_t *e;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return ei_x_encode_longlong(b, json_integer_value(v)) == 0 ? 0 : -1;
    case JSON_REAL:
        return ei_x_encode_double(b, json_real_value(v)) == 0 ? 0 : -1;
    case JSON_STRING:
        return ei_x_encode_binary(b, json_string_value(v), (long)json_string_length(v)) == 0 ? 0
                                                                                             : -1;
    case JSON_TRUE:
        return ei_x_encode_atom(b, "true") == 0 ? 0 : -1;
    case JSON_FALSE:
        return ei_x_encode_atom(b, "false") == 0 ? 0 : -1;
    case JSON_NULL:
        return ei_x_encode_atom(b, "nil") == 0 ? 0 : -1;
    case JSON_ARRAY:
        if (json_array_size(v) && ei_x_encode_list_header(b, (long)json_array_size(v)) != 0)
            return -1;
        json_array_foreach(v, i, e) if (json_to_term(b, e) != 0) return -1;
        return ei_x_encode_empty_list(b) == 0 ? 0 : -1;
    case JSON_OBJECT:
        if (ei_x_encode_map_header(b, (long)json_object_size(v)) != 0)
            return -1;
        json_object_foreach(v, k, e)
        {
            if (ei_x_encode_binary(b, k, (long)strlen(k)) != 0 || json_to_term(b, e) != 0)
                return -1;
        }
        return 0;
    }
    return -1;
}

/* JSON strings are UTF-8, and so are the atoms made of them: ei_x_encode_atom
 * would take the bytes for Latin-1 ("mód" would become 'mÃ³d'). */
static int encode_utf8_atom(ph_buf *b, const char *text)
{
    return ei_x_encode_atom_len_as(b, text, (int)strlen(text), ERLANG_UTF8, ERLANG_UTF8);
}

static int encode_atom_field(ph_buf *b, json_t *spec, const char *key, const char *dflt, char *err,
                             size_t size, const char *prefix)
{
    json_t *v = json_object_get(spec, key);
    char field[128];
    snprintf(field, sizeof field, "%s.%s", prefix, key);
    if (!v)
        return dflt ? (ei_x_encode_atom(b, dflt) == 0 ? 0 : -1) : fail(err, size, field, "missing");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255)
        return fail(err, size, field, "must be a non-empty string");
    return encode_utf8_atom(b, json_string_value(v)) == 0 ? 0 : -1;
}

/* {"id": "c1", "start": {"module": "counter", "function": "start_link",
 *  "args": [5]}, "restart": "permanent", "shutdown": 5000 | "brutal_kill"} */
static int encode_spec(ph_buf *b, json_t *spec, const char *prefix, char *err, size_t size)
{
    char field[128];
    snprintf(field, sizeof field, "%s", prefix);
    if (!json_is_object(spec))
        return fail(err, size, field, "must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(spec, key, v)
    {
        if (strcmp(key, "id") && strcmp(key, "start") && strcmp(key, "restart") &&
            strcmp(key, "shutdown")) {
            snprintf(field, sizeof field, "%s.%s", prefix, key);
            return fail(err, size, field, "unknown field");
        }
    }
    json_t *id = json_object_get(spec, "id"), *start = json_object_get(spec, "start");
    json_t *shutdown = json_object_get(spec, "shutdown");
    snprintf(field, sizeof field, "%s.id", prefix);
    if (!json_is_string(id) || json_string_length(id) == 0)
        return fail(err, size, field, "must be a non-empty string");
    snprintf(field, sizeof field, "%s.start", prefix);
    if (!json_is_object(start))
        return fail(err, size, field, "must be an object with module, function and args");
    json_object_foreach(start, key, v)
    {
        if (strcmp(key, "module") && strcmp(key, "function") && strcmp(key, "args")) {
            snprintf(field, sizeof field, "%s.start.%s", prefix, key);
            return fail(err, size, field, "unknown field");
        }
    }
    json_t *args = json_object_get(start, "args");
    if (ei_x_encode_map_header(b, shutdown ? 4 : 3) != 0 || ei_x_encode_atom(b, "id") != 0 ||
        json_to_term(b, id) != 0 || ei_x_encode_atom(b, "start") != 0 ||
        ei_x_encode_tuple_header(b, 3) != 0 ||
        encode_atom_field(b, start, "module", NULL, err, size, prefix) != 0 ||
        encode_atom_field(b, start, "function", "start_link", err, size, prefix) != 0)
        return -1;
    if (args ? json_to_term(b, args) != 0 : ei_x_encode_empty_list(b) != 0)
        return -1;
    if (ei_x_encode_atom(b, "restart") != 0)
        return -1;
    json_t *restart = json_object_get(spec, "restart");
    const char *r = restart ? json_string_value(restart) : "permanent";
    snprintf(field, sizeof field, "%s.restart", prefix);
    if (!r || (strcmp(r, "permanent") && strcmp(r, "transient") && strcmp(r, "temporary")))
        return fail(err, size, field, "must be \"permanent\", \"transient\" or \"temporary\"");
    if (ei_x_encode_atom(b, r) != 0)
        return -1;
    if (shutdown) {
        snprintf(field, sizeof field, "%s.shutdown", prefix);
        if (ei_x_encode_atom(b, "shutdown") != 0)
            return -1;
        if (json_is_integer(shutdown) && json_integer_value(shutdown) >= 0)
            return ei_x_encode_long(b, (long)json_integer_value(shutdown)) == 0 ? 0 : -1;
        if (json_is_string(shutdown) && strcmp(json_string_value(shutdown), "brutal_kill") == 0)
            return ei_x_encode_atom(b, "brutal_kill") == 0 ? 0 : -1;
        return fail(err, size, field, "must be milliseconds or \"brutal_kill\"");
    }
    return 0;
}

/* A hook argument: "_" is the hook data, ":name" an atom, the rest as JSON. */
int hub_config_encode_child_spec(ph_buf *b, json_t *spec, char *err, size_t err_size)
{
    char inner[256];
    if (encode_spec(b, spec, "spec", inner, sizeof inner) == 0)
        return 0;
    /* "config field \"spec.id\": ..." -> "child spec field \"id\": ..." */
    const char *dot = strstr(inner, "\"spec");
    if (dot && (dot[5] == '.' || dot[5] == '"'))
        snprintf(err, err_size, "child spec%s%s", dot[5] == '.' ? " field \"" : "",
                 dot[5] == '.' ? dot + 6 : dot + 6);
    else
        snprintf(err, err_size, "%s", inner);
    return -1;
}

static int encode_hook_arg(ph_buf *b, json_t *a)
{
    const char *s = json_is_string(a) ? json_string_value(a) : NULL;
    if (s && strcmp(s, "_") == 0)
        return ei_x_encode_atom(b, "_") == 0 ? 0 : -1;
    if (s && s[0] == ':' && s[1] && strlen(s) <= 256)
        return ei_x_encode_atom_len_as(b, s + 1, (int)strlen(s + 1), ERLANG_UTF8, ERLANG_UTF8) == 0
                   ? 0
                   : -1;
    return json_to_term(b, a);
}

/* "hooks": {"hook_key": [{"id": "h1", "node": "beam@host", "m": "mod",
 *  "f": "fun", "a": [":atom", "_", 1], "p": 10}]} -> [{Key, Node, Handler}] */
static int encode_hooks(ph_buf *b, json_t *hooks, char *err, size_t size)
{
    if (!json_is_object(hooks))
        return fail(err, size, "hooks", "must be an object of hook key -> list of handlers");
    ph_buf_reset(b);
    const char *key;
    json_t *list;
    json_object_foreach(hooks, key, list)
    {
        char field[320];
        size_t i;
        json_t *h;
        snprintf(field, sizeof field, "hooks.%s", key);
        if (!json_is_array(list) || strlen(key) > 255)
            return fail(err, size, field, "must be a list of handlers");
        json_array_foreach(list, i, h)
        {
            snprintf(field, sizeof field, "hooks.%s[%zu]", key, i);
            const char *hk;
            json_t *hv;
            if (json_is_object(h))
                json_object_foreach(h, hk, hv) if (strcmp(hk, "id") && strcmp(hk, "node") &&
                                                   strcmp(hk, "m") && strcmp(hk, "f") &&
                                                   strcmp(hk, "a") && strcmp(hk, "p"))
                {
                    snprintf(field, sizeof field, "hooks.%s[%zu].%s", key, i, hk);
                    return fail(err, size, field, "unknown field");
                }
            json_t *id = json_object_get(h, "id"), *node = json_object_get(h, "node");
            json_t *m = json_object_get(h, "m"), *f = json_object_get(h, "f");
            json_t *a = json_object_get(h, "a"), *p = json_object_get(h, "p");
            if (!json_is_object(h) || !json_is_string(id) || !json_is_string(node) ||
                !strchr(json_string_value(node), '@') || !json_is_string(m) || !json_is_string(f) ||
                (a && !json_is_array(a)) || (p && !json_is_integer(p)))
                return fail(err, size, field,
                            "must be {\"id\", \"node\", \"m\", \"f\", \"a\": [...], \"p\"}");
            size_t j;
            json_t *arg;
            if (ei_x_encode_list_header(b, 1) != 0 || ei_x_encode_tuple_header(b, 3) != 0 ||
                encode_utf8_atom(b, key) != 0 ||
                encode_utf8_atom(b, json_string_value(node)) != 0 ||
                ei_x_encode_map_header(b, 5) != 0 || ei_x_encode_atom(b, "id") != 0 ||
                json_to_term(b, id) != 0 || ei_x_encode_atom(b, "m") != 0 ||
                encode_utf8_atom(b, json_string_value(m)) != 0 || ei_x_encode_atom(b, "f") != 0 ||
                encode_utf8_atom(b, json_string_value(f)) != 0 || ei_x_encode_atom(b, "a") != 0)
                return fail(err, size, field, "cannot be encoded");
            if (a && json_array_size(a) &&
                ei_x_encode_list_header(b, (long)json_array_size(a)) != 0)
                return -1;
            if (a)
                json_array_foreach(a, j, arg) if (encode_hook_arg(b, arg) != 0) return -1;
            if (ei_x_encode_empty_list(b) != 0 || ei_x_encode_atom(b, "p") != 0 ||
                ei_x_encode_long(b, p ? (long)json_integer_value(p) : 0) != 0)
                return -1;
        }
    }
    return ei_x_encode_empty_list(b) == 0 ? 0 : -1;
}

static int read_ms(json_t *root, const char *field, unsigned min, unsigned *out, char *err,
                   size_t size)
{
    json_t *v = json_object_get(root, field);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > 0x7fffffff) {
        char problem[64];
        snprintf(problem, sizeof problem, "must be an integer >= %u", min);
        return fail(err, size, field, problem);
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int check_strategy(json_t *root, const char *field, const char *const types[3], char *err,
                          size_t size)
{
    json_t *v = json_object_get(root, field);
    if (!v)
        return 0;
    json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
    if (!json_is_string(t))
        return fail(err, size, field, "must be an object with a \"type\"");
    for (int i = 0; i < 3 && types[i]; i++)
        if (strcmp(json_string_value(t), types[i]) == 0)
            return 0;
    char problem[200];
    snprintf(problem, sizeof problem, "type \"%s\" is not available (only %s%s%s%s)",
             json_string_value(t), types[0], types[1] ? ", " : "", types[1] ? types[1] : "",
             types[1] && types[2] ? ", ..." : "");
    return fail(err, size, field, problem);
}

/* redundancy_strategy: {"type": "replication", "replication_factor": N |
 * "cluster_size", "replication_model": ..., "redundancy_signal": ...} */
static int read_redundancy(hub_config *c, json_t *v, char *err, size_t size)
{
    if (!v)
        return 0;
    if (strcmp(json_string_value(json_object_get(v, "type")), "singularity") == 0) {
        c->replication_factor = 1;
        return 0;
    }
    c->replication_factor = 2; /* ProcessHub's default for replication */
    json_t *rf = json_object_get(v, "replication_factor");
    if (rf && json_is_string(rf) && strcmp(json_string_value(rf), "cluster_size") == 0)
        c->replication_factor = 0;
    else if (rf && json_is_integer(rf) && json_integer_value(rf) >= 1 &&
             json_integer_value(rf) <= 255)
        c->replication_factor = (int)json_integer_value(rf);
    else if (rf)
        return fail(err, size, "redundancy_strategy.replication_factor",
                    "must be an integer from 1 to 255 or \"cluster_size\"");
    json_t *model = json_object_get(v, "replication_model");
    const char *m = model && json_is_string(model) ? json_string_value(model) : NULL;
    if (model && (!m || (strcmp(m, "active_active") != 0 && strcmp(m, "active_passive") != 0)))
        return fail(err, size, "redundancy_strategy.replication_model",
                    "must be \"active_active\" or \"active_passive\"");
    c->active_passive = m && strcmp(m, "active_passive") == 0;
    static const char *const signals[] = {"none", "active", "passive", "all"};
    json_t *sig = json_object_get(v, "redundancy_signal");
    if (sig) {
        const char *s = json_is_string(sig) ? json_string_value(sig) : "";
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(s, signals[i]) == 0)
                found = i;
        if (found < 0)
            return fail(err, size, "redundancy_strategy.redundancy_signal",
                        "must be \"none\", \"active\", \"passive\" or \"all\"");
        c->redundancy_signal = found;
    }
    return 0;
}

/* synchronization_strategy: {"type": "pubsub" | "gossip", "sync_interval":
 * ms, and for gossip "recipients": N, "restricted_init": bool} (the type
 * was checked by check_strategy) */
static int read_sync(hub_config *c, json_t *v, char *err, size_t size)
{
    if (!v)
        return 0;
    if (read_ms(v, "sync_interval", 1, &c->sync_interval, err, size) != 0)
        return -1;
    const char *type = json_string_value(json_object_get(v, "type"));
    snprintf(c->sync_type, sizeof c->sync_type, "%s", type ? type : "pubsub");
    int gossip = strcmp(c->sync_type, "gossip") == 0;
    json_t *r = json_object_get(v, "recipients");
    if (r && (!gossip || !json_is_integer(r) || json_integer_value(r) < 1 ||
              json_integer_value(r) > 255))
        return fail(err, size, "synchronization_strategy.recipients",
                    gossip ? "must be an integer from 1 to 255" : "is an option of gossip only");
    if (r)
        c->sync_recipients = (unsigned)json_integer_value(r);
    json_t *ri = json_object_get(v, "restricted_init");
    if (ri && (!gossip || !json_is_boolean(ri)))
        return fail(err, size, "synchronization_strategy.restricted_init",
                    gossip ? "must be true or false" : "is an option of gossip only");
    if (ri)
        c->sync_unrestricted_init = !json_is_true(ri);
    return 0;
}

/* migration_strategy: {"type": "cold_swap"} or {"type": "hot_swap",
 * "retention": ms, "handover": bool, "confirm_handover": bool,
 * "handover_data_wait": ms, "child_migration_timeout": ms} (the type was
 * checked by check_strategy) */
static int read_migration(hub_config *c, json_t *v, char *err, size_t size)
{
    static const char *const flags[] = {"handover", "confirm_handover"};
    static const char *const times[] = {"retention", "handover_data_wait",
                                        "child_migration_timeout"};
    if (!v)
        return 0;
    c->hot_swap = strcmp(json_string_value(json_object_get(v, "type")), "hot_swap") == 0;
    int *flag_out[] = {&c->handover, &c->confirm_handover};
    unsigned *time_out[] = {&c->retention, &c->handover_data_wait, &c->child_migration_timeout};
    char field[64];
    for (int i = 0; i < 2; i++) {
        json_t *f = json_object_get(v, flags[i]);
        snprintf(field, sizeof field, "migration_strategy.%s", flags[i]);
        if (f && (!c->hot_swap || !json_is_boolean(f)))
            return fail(err, size, field,
                        c->hot_swap ? "must be true or false" : "is an option of hot_swap only");
        if (f)
            *flag_out[i] = json_is_true(f);
    }
    for (int i = 0; i < 3; i++) {
        json_t *t = json_object_get(v, times[i]);
        snprintf(field, sizeof field, "migration_strategy.%s", times[i]);
        if (t && (!c->hot_swap || !json_is_integer(t) || json_integer_value(t) < 1 ||
                  json_integer_value(t) > 0x7fffffff))
            return fail(err, size, field,
                        c->hot_swap ? "must be an integer >= 1 (ms)"
                                    : "is an option of hot_swap only");
        if (t)
            *time_out[i] = (unsigned)json_integer_value(t);
    }
    return 0;
}

/* An integer option of a partition strategy within [min, max]. */
static int read_int(json_t *v, const char *field, long min, long max, long *out, char *err,
                    size_t size)
{
    char problem[96];
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(problem, sizeof problem, "must be an integer from %ld to %ld", min, max);
        return fail(err, size, field, problem);
    }
    *out = (long)json_integer_value(v);
    return 0;
}

/* partition_tolerance_strategy: {"type": "divergence"}, {"type":
 * "static_quorum", "quorum_size": N, "startup_confirm": bool}, {"type":
 * "dynamic_quorum", "quorum_size": percent, "threshold_time": s}, {"type":
 * "majority_quorum", "initial_cluster_size": N, "track_max_size": bool} */
static int read_partition(hub_config *c, json_t *v, char *err, size_t size)
{
    static const struct {
        const char *type, *options[3];
    } known[] = {
        {"divergence", {NULL}},
        {"static_quorum", {"quorum_size", "startup_confirm", NULL}},
        {"dynamic_quorum", {"quorum_size", "threshold_time", NULL}},
        {"majority_quorum", {"initial_cluster_size", "track_max_size", NULL}},
    };
    const char *f = "partition_tolerance_strategy";
    if (!v)
        return 0;
    json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
    if (!json_is_string(t))
        return fail(err, size, f, "must be an object with a \"type\"");
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(json_string_value(t), known[i].type) == 0)
            k = i;
    if (k < 0)
        return fail(err, size, f,
                    "type must be \"divergence\", \"static_quorum\", \"dynamic_quorum\" or "
                    "\"majority_quorum\"");
    const char *key;
    json_t *o;
    char field[160];
    json_object_foreach(v, key, o)
    {
        int ok = strcmp(key, "type") == 0;
        for (int j = 0; j < 3 && known[k].options[j] && !ok; j++)
            ok = strcmp(key, known[k].options[j]) == 0;
        if (!ok) {
            snprintf(field, sizeof field, "%s.%s", f, key);
            return fail(err, size, field, "is not an option of this type");
        }
    }
    snprintf(c->partition_type, sizeof c->partition_type, "%s", known[k].type);
    long n;
    json_t *q = json_object_get(v, "quorum_size");
    if (k == 1 || k == 2) {
        if (!q)
            return fail(err, size, "partition_tolerance_strategy.quorum_size",
                        k == 1 ? "missing (the number of nodes)" : "missing (a percentage)");
        if (read_int(q, "partition_tolerance_strategy.quorum_size", 1, k == 1 ? 100000 : 100, &n,
                     err, size) != 0)
            return -1;
        c->quorum_size = n;
    }
    json_t *b = json_object_get(v, k == 1 ? "startup_confirm" : "track_max_size");
    if ((k == 1 || k == 3) && b) {
        if (!json_is_boolean(b))
            return fail(err, size,
                        k == 1 ? "partition_tolerance_strategy.startup_confirm"
                               : "partition_tolerance_strategy.track_max_size",
                        "must be true or false");
        if (k == 1)
            c->startup_confirm = json_is_true(b);
        else
            c->track_max_size = json_is_true(b);
    }
    json_t *tt = json_object_get(v, "threshold_time");
    if (k == 2 && tt) {
        if (read_int(tt, "partition_tolerance_strategy.threshold_time", 0, 0x7fffffff, &n, err,
                     size) != 0)
            return -1;
        c->threshold_time = (unsigned)n;
    }
    json_t *ic = json_object_get(v, "initial_cluster_size");
    if (k == 3 && ic) {
        if (read_int(ic, "partition_tolerance_strategy.initial_cluster_size", 1, 100000, &n, err,
                     size) != 0)
            return -1;
        c->initial_cluster_size = (unsigned)n;
    }
    return 0;
}

int hub_config_from_json(hub_config *c, json_t *root, char *err, size_t err_size)
{
    json_t *v = json_object_get(root, "hub_id");
    if (v) {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255)
            return fail(err, err_size, "hub_id", "must be a non-empty string of at most 255 bytes");
        snprintf(c->hub_id, sizeof c->hub_id, "%s", json_string_value(v));
    }
    v = json_object_get(root, "child_specs");
    if (v) {
        if (!json_is_array(v))
            return fail(err, err_size, "child_specs", "must be an array of child specs");
        ph_buf_reset(&c->child_specs);
        size_t i;
        json_t *spec;
        if (json_array_size(v) &&
            ei_x_encode_list_header(&c->child_specs, (long)json_array_size(v)) != 0)
            return fail(err, err_size, "child_specs", "out of memory");
        json_array_foreach(v, i, spec)
        {
            char prefix[48];
            snprintf(prefix, sizeof prefix, "child_specs[%zu]", i);
            if (encode_spec(&c->child_specs, spec, prefix, err, err_size) != 0)
                return -1;
        }
        if (ei_x_encode_empty_list(&c->child_specs) != 0)
            return fail(err, err_size, "child_specs", "out of memory");
    }
    v = json_object_get(root, "hooks");
    if (v && encode_hooks(&c->hooks, v, err, err_size) != 0)
        return -1;
    if (read_partition(c, json_object_get(root, "partition_tolerance_strategy"), err, err_size) !=
        0)
        return -1;
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++)
        if (check_strategy(root, strategies[i].field, strategies[i].types, err, err_size) != 0)
            return -1;
    if (read_redundancy(c, json_object_get(root, "redundancy_strategy"), err, err_size) != 0)
        return -1;
    json_t *dist = json_object_get(root, "distribution_strategy");
    if (dist) {
        json_t *t = json_is_object(dist) ? json_object_get(dist, "type") : NULL;
        if (!json_is_string(t) || json_string_length(t) == 0 ||
            json_string_length(t) >= sizeof c->distribution_type)
            return fail(err, err_size, "distribution_strategy",
                        "must be an object with a \"type\" of at most 63 bytes");
        snprintf(c->distribution_type, sizeof c->distribution_type, "%s", json_string_value(t));
        ph_buf_reset(&c->distribution);
        if (json_to_term(&c->distribution, dist) != 0)
            return fail(err, err_size, "distribution_strategy", "out of memory");
    }
    json_t *beam = json_object_get(root, "beam_discovery");
    if (beam) {
        if (!json_is_boolean(beam))
            return fail(err, err_size, "beam_discovery", "must be true or false");
        c->beam_discovery = json_is_true(beam);
    }
    if (read_sync(c, json_object_get(root, "synchronization_strategy"), err, err_size) != 0)
        return -1;
    if (read_migration(c, json_object_get(root, "migration_strategy"), err, err_size) != 0)
        return -1;
    if (read_ms(root, "hubs_discover_interval", 1, &c->hubs_discover_interval, err, err_size) ||
        read_ms(root, "deadlock_recovery_timeout", 1, &c->deadlock_recovery_timeout, err,
                err_size) ||
        read_ms(root, "storage_purge_interval", 1, &c->storage_purge_interval, err, err_size) ||
        read_ms(root, "migr_base_timeout", 1, &c->migr_base_timeout, err, err_size) ||
        read_ms(root, "dsup_max_restarts", 0, &c->dsup_max_restarts, err, err_size) ||
        read_ms(root, "dsup_max_seconds", 1, &c->dsup_max_seconds, err, err_size) ||
        read_ms(root, "dsup_shutdown_timeout", 0, &c->dsup_shutdown_timeout, err, err_size) ||
        read_ms(root, "hook_timeout", 1, &c->hook_timeout, err, err_size))
        return -1;
    return 0;
}
