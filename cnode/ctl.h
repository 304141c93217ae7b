/* ctl.h - `phnode ctl`: the control command (docs/operations.md). */
#ifndef PH_CTL_H
#define PH_CTL_H

/* argv[0] is "ctl". Returns the process exit status: 0 done, 1 the node
 * refused or the id is unknown, 2 bad command line, 3 cannot reach the node
 * or no reply in time. */
int ctl_main(int argc, char **argv);

#endif
