build-dev/cnode/ctl_term.o: cnode/ctl_term.c cnode/ctl_term.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
cnode/ctl_term.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
