build-dev/ei_glue/term.o: ei_glue/term.c include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h ei_glue/term_trust.h
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/term_trust.h:
