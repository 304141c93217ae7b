%% ph_echo_server - the BEAM twin of phnode's echo worker, used by the
%% benchmarks as the BEAM side: call X -> X; casts and other messages are
%% ignored.
-module(ph_echo_server).
-behaviour(gen_server).

-export([start/0, start_link/0, stop/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% Starts the server registered as ph_echo_server, not linked to the caller
%% (so it outlives e.g. an `erl -eval` process). {ok, Pid} | {error, Reason}.
start() ->
    gen_server:start({local, ?MODULE}, ?MODULE, [], []).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

stop() ->
    gen_server:stop(?MODULE).

init([]) ->
    {ok, nostate}.

handle_call(Request, _From, State) ->
    {reply, Request, State}.

handle_cast(_Request, State) ->
    {noreply, State}.

handle_info(_Message, State) ->
    {noreply, State}.
