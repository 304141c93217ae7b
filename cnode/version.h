/* version.h - phnode's version, shown by --version, `phnode ctl status` and
 * the phnode_build_info metric. */
#ifndef PH_VERSION_H
#define PH_VERSION_H

#define PHNODE_VERSION "0.1.0"

#endif
