%% The BEAM side of the benchmarks: the same jobs phnode's bundled workers
%% do, as plain gen_servers, so both are measured in the same run.
%%   echo:    call X -> X
%%   counter: call get -> N, call {add, K} -> N, cast {add, K}
-module(ph_bench_server).
-behaviour(gen_server).
-export([start/0, spawn_many/1, stop_many/1]).
-export([registry_start/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% Starts the registered echo and counter servers and keeps them (and the
%% node) running.
start() ->
    {ok, _} = gen_server:start({local, ph_bench_echo}, ?MODULE, echo, []),
    {ok, _} = gen_server:start({local, ph_bench_counter}, ?MODULE, {counter, 0}, []),
    registry_start().

%% Starts N idle counter servers; returns {Microseconds, BytesPerProcess}.
spawn_many(N) ->
    garbage_collect(),
    Before = erlang:memory(total),
    T0 = erlang:monotonic_time(microsecond),
    Pids = [begin {ok, P} = gen_server:start(?MODULE, {counter, 0}, []), P end
            || _ <- lists:seq(1, N)],
    T1 = erlang:monotonic_time(microsecond),
    After = erlang:memory(total),
    put(many, Pids),
    {T1 - T0, (After - Before) div N}.

stop_many(_) ->
    [exit(P, kill) || P <- get(many)],
    erase(many),
    ok.

%% The BEAM counterpart of the hub's get_pid: a gen_server answering
%% {get_pid, Cid} from an ETS table.
registry_start() ->
    {ok, _} = gen_server:start({local, ph_bench_registry}, ?MODULE, registry, []),
    ok.

init(registry) ->
    T = ets:new(ph_bench_registry, [set, protected]),
    ets:insert(T, {<<"c1">>, self()}),
    {ok, {registry, T}};
init(echo) -> {ok, echo};
init({counter, N}) -> {ok, N}.

handle_call({get_pid, Cid}, _From, {registry, T} = S) ->
    case ets:lookup(T, Cid) of
        [{_, Pid}] -> {reply, Pid, S};
        [] -> {reply, nil, S}
    end;
handle_call(X, _From, echo) -> {reply, X, echo};
handle_call(get, _From, N) -> {reply, N, N};
handle_call({add, K}, _From, N) -> {reply, N + K, N + K}.

handle_cast({add, K}, N) -> {noreply, N + K};
handle_cast(_, S) -> {noreply, S}.

handle_info(_, S) -> {noreply, S}.
