%% The BEAM side of the cluster benchmark: 100k pg joins on one node, timed
%% until every other node of the scope sees all of them.
-module(ph_bench_pg).
-export([start/0, joins/2]).

start() ->
    {ok, _} = pg:start(ph_bench_pg),
    ok.

%% N processes join one group each on this node; returns the milliseconds
%% until every node in Others sees N groups. Afterwards (untimed) the
%% processes exit and the call returns once the other nodes see no group,
%% so that the next round starts from an empty scope.
joins(N, Others) ->
    [true = net_kernel:connect_node(O) || O <- Others],
    timer:sleep(500), %% let the pg scopes discover each other
    T0 = erlang:monotonic_time(millisecond),
    Parent = self(),
    Pids = [spawn(fun() ->
                      ok = pg:join(ph_bench_pg, {g, I}, self()),
                      Parent ! joined,
                      receive stop -> ok end
                  end) || I <- lists:seq(1, N)],
    [receive joined -> ok end || _ <- lists:seq(1, N)],
    wait_seen(fun(C) -> C >= N end, Others),
    Ms = erlang:monotonic_time(millisecond) - T0,
    [P ! stop || P <- Pids],
    wait_seen(fun(C) -> C =:= 0 end, [node() | Others]),
    Ms.

wait_seen(Done, Nodes) ->
    Counts = [erpc:call(O, fun() -> length(pg:which_groups(ph_bench_pg)) end) || O <- Nodes],
    case lists:all(Done, Counts) of
        true -> ok;
        false -> timer:sleep(5), wait_seen(Done, Nodes)
    end.
