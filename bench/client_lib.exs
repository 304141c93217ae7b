# Loads the Elixir client (clients/elixir/lib) and the test helpers into a
# bench script's VM, without Mix: the client's modules in dependency order.
Code.require_file("../test/integration/support/ph_test.exs", __DIR__)
lib = Path.expand("../clients/elixir/lib", __DIR__)

for f <- ~w(start_result stop_result hook_manager hook_dispatcher hub future),
    do: Code.require_file(Path.join([lib, "phnode", f <> ".ex"]))

Code.require_file(Path.join(lib, "phnode.ex"))
