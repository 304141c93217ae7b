build-dev/strategies/partition/quorum.o: strategies/partition/quorum.c \
 strategies/partition/quorum.h
strategies/partition/quorum.h:
