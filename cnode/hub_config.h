/* hub_config.h - the hub's part of the --config file (%ProcessHub{} field
 * names), read into a hub_config. */
#ifndef PH_CNODE_HUB_CONFIG_H
#define PH_CNODE_HUB_CONFIG_H

#include "hub/hub.h"

#include <jansson.h>
#include <stddef.h>

/* Names of the top-level config fields that belong to the hub. */
int hub_config_is_field(const char *key);
/* Reads the hub fields of root into c (which holds the defaults). 0, or -1
 * with a message naming the field in err. */
int hub_config_from_json(hub_config *c, json_t *root, char *err, size_t err_size);

/* One JSON child spec (docs/configuration.md) as a child spec map; 0, or -1
 * with the problem in err ("child spec field \"id\": must be ..."). */
int hub_config_encode_child_spec(ph_buf *b, json_t *spec, char *err, size_t err_size);

#endif
