build-dev/hub/runtime/thread_buf.o: hub/runtime/thread_buf.c \
 hub/runtime/thread_buf.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
hub/runtime/thread_buf.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
