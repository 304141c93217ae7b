%% ph_interop_tests - Erlang talks to a running phnode.
%%
%%   PHNODE_NODE=ph@127.0.0.1 PHNODE_COOKIE=secret rebar3 eunit
%%
%% (test/integration/run.sh starts the phnode and sets both; PH_COOKIE is
%% accepted instead of PHNODE_COOKIE.) The test starts distribution itself.
-module(ph_interop_tests).
-include_lib("eunit/include/eunit.hrl").

%% --- local: the BEAM echo server of the benchmarks ------------------------------

ph_echo_server_test() ->
    {ok, Pid} = ph_echo_server:start(),
    ?assertEqual(Pid, whereis(ph_echo_server)),
    ?assertEqual({hello, [1, 2.5, <<"bin">>]}, gen_server:call(ph_echo_server, {hello, [1, 2.5, <<"bin">>]})),
    ok = gen_server:cast(ph_echo_server, ignored),
    ph_echo_server ! ignored_too,
    ?assertEqual(still_here, gen_server:call(ph_echo_server, still_here)),
    ?assertMatch({error, {already_started, Pid}}, ph_echo_server:start()),
    ok = ph_echo_server:stop().

%% --- against phnode -------------------------------------------------------------

interop_test_() ->
    case os:getenv("PHNODE_NODE") of
        V when V =:= false; V =:= "" ->
            [{"PHNODE_NODE is set",
              ?_test(erlang:error({missing_env, "set PHNODE_NODE (a running phnode) and "
                                                "PHNODE_COOKIE, or run test/integration/run.sh"}))}];
        NodeName ->
            {setup,
             fun() -> setup(list_to_atom(NodeName)) end,
             fun cleanup/1,
             fun({Node, _Started}) ->
                 [{"ping", ?_test(ping(Node))},
                  {"phnode is a hidden node", ?_test(hidden(Node))},
                  {":modules", ?_test(modules(Node))},
                  {"spawn echo, call by pid and by name", ?_test(echo_call(Node))},
                  {"counter call and cast", ?_test(counter(Node))},
                  {"call to a dead pid exits noproc quickly", ?_test(dead_pid(Node))},
                  {"call to an unknown name exits noproc quickly", ?_test(unknown_name(Node))},
                  {"monitor + crash gives the reason", ?_test(monitor_crash(Node))},
                  {"caller of a crashing call exits with the reason", ?_test(call_crash(Node))},
                  {"link + trap_exit gives EXIT with the reason", ?_test(link_crash(Node))}]
             end}
    end.

setup(Node) ->
    Started =
        case node() of
            nonode@nohost ->
                Name = list_to_atom("ph_eunit_" ++ os:getpid() ++ "@127.0.0.1"),
                {ok, _} = net_kernel:start([Name, longnames]),
                true;
            _ ->
                false
        end,
    Cookie = case os:getenv("PHNODE_COOKIE") of
                 C when C =:= false; C =:= "" -> os:getenv("PH_COOKIE");
                 C -> C
             end,
    ?assert(is_list(Cookie) andalso Cookie =/= ""),
    true = erlang:set_cookie(node(), list_to_atom(Cookie)),
    {Node, Started}.

cleanup({_Node, true}) ->
    net_kernel:stop();
cleanup(_) ->
    ok.

spawn_worker(Node, Module, Args, Opts) ->
    case gen_server:call({phnode, Node}, {spawn, Module, Args, Opts}, 5000) of
        {ok, Pid} when is_pid(Pid) -> Pid;
        Other -> erlang:error({spawn_failed, Module, Args, Opts, Other})
    end.

unique_name(Prefix) ->
    list_to_atom(Prefix ++ "_" ++ integer_to_list(erlang:unique_integer([positive]))).

%% {ElapsedMs, {ok, Reply} | {exit, Reason}}
timed_call(Server, Request, Timeout) ->
    T0 = erlang:monotonic_time(microsecond),
    Res = try {ok, gen_server:call(Server, Request, Timeout)}
          catch exit:Reason -> {exit, Reason}
          end,
    {(erlang:monotonic_time(microsecond) - T0) / 1000, Res}.

ping(Node) ->
    ?assertEqual(pong, net_adm:ping(Node)).

hidden(Node) ->
    pong = net_adm:ping(Node),
    ?assert(lists:member(Node, nodes(hidden))),
    ?assertNot(lists:member(Node, nodes())).

modules(Node) ->
    Mods = gen_server:call({phnode, Node}, modules),
    [?assert(lists:member(M, Mods)) || M <- [echo, counter, kv, crasher]],
    ?assertEqual({error, {unknown_module, nope}},
                 gen_server:call({phnode, Node}, {spawn, nope, [], []})).

echo_call(Node) ->
    Pid = spawn_worker(Node, echo, [], []),
    ?assertEqual(Node, node(Pid)),
    Term = {hello, [1, 2.5, <<"bin">>, #{a => b}], self(), make_ref()},
    ?assertEqual(Term, gen_server:call(Pid, Term)),
    Name = unique_name("erl_echo"),
    Named = spawn_worker(Node, echo, [], [{name, Name}]),
    ?assertEqual(by_name, gen_server:call({Name, Node}, by_name)),
    ?assertEqual({error, {already_started, Named}},
                 gen_server:call({phnode, Node}, {spawn, echo, [], [{name, Name}]})).

counter(Node) ->
    Pid = spawn_worker(Node, counter, [40], []),
    ?assertEqual(41, gen_server:call(Pid, {add, 1})),
    ok = gen_server:cast(Pid, {add, 1}),
    ?assertEqual(42, gen_server:call(Pid, get)),
    Pid ! {process_hub, redundancy_signal, active},
    ?assertEqual(active, gen_server:call(Pid, mode)).

dead_pid(Node) ->
    Pid = spawn_worker(Node, crasher, [], []),
    Ref = erlang:monitor(process, Pid),
    ?assertEqual(ok, gen_server:call(Pid, {stop, normal})),
    receive {'DOWN', Ref, process, Pid, normal} -> ok
    after 5000 -> erlang:error(no_down)
    end,
    {Ms, Res} = timed_call(Pid, anything, 5000),
    ?assertMatch({exit, {noproc, {gen_server, call, _}}}, Res),
    ?assert(Ms < 1000).

unknown_name(Node) ->
    {Ms, Res} = timed_call({unique_name("no_such_name"), Node}, anything, 5000),
    ?assertMatch({exit, {noproc, {gen_server, call, _}}}, Res),
    ?assert(Ms < 1000).

monitor_crash(Node) ->
    Pid = spawn_worker(Node, crasher, [], []),
    Ref = erlang:monitor(process, Pid),
    Reason = {boom, 42},
    ?assertMatch({exit, {Reason, _}}, element(2, timed_call(Pid, {crash, Reason}, 5000))),
    receive
        {'DOWN', Ref, process, Pid, Got} -> ?assertEqual(Reason, Got)
    after 5000 -> erlang:error(no_down)
    end.

call_crash(Node) ->
    Pid = spawn_worker(Node, crasher, [], []),
    ?assertMatch({exit, {{boom, erlang}, {gen_server, call, _}}},
                 element(2, timed_call(Pid, {crash, {boom, erlang}}, 5000))).

link_crash(Node) ->
    Pid = spawn_worker(Node, crasher, [], []),
    Self = self(),
    Helper = spawn(fun() ->
                           process_flag(trap_exit, true),
                           link(Pid),
                           Self ! {linked, self()},
                           receive Msg -> Self ! {helper_got, Msg}
                           after 5000 -> Self ! {helper_got, nothing}
                           end
                   end),
    receive {linked, Helper} -> ok after 5000 -> erlang:error(no_link) end,
    {exit, {{boom, linked}, _}} = element(2, timed_call(Pid, {crash, {boom, linked}}, 5000)),
    receive
        {helper_got, Msg} -> ?assertEqual({'EXIT', Pid, {boom, linked}}, Msg)
    after 6000 -> erlang:error(helper_silent)
    end.
