build-dev/strategies/distribution/lb_score.o: \
 strategies/distribution/lb_score.c strategies/distribution/lb_score.h
strategies/distribution/lb_score.h:
