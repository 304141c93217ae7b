defmodule PhNode.HookManager do
  @moduledoc """
  A hook handler (ProcessHub's `%ProcessHub.Service.HookManager{}`), run on
  the client node:

    * `%PhNode.HookManager{id: id, m: m, f: f, a: args, p: p}`: `apply(m, f, args)`
      with every `:_` in `args` replaced by the hook data;
    * `%PhNode.HookManager{id: id, fun: fun, p: p}`: `fun.(data)`;
    * `%PhNode.HookManager{id: id, pid: pid, p: p}`: `send(pid, {:process_hub, hook_key, data})`.

  Plain maps with the same keys are accepted too. `p` (default 0): higher runs first.
  """
  defstruct id: nil, m: nil, f: nil, a: [], fun: nil, pid: nil, p: 0
end
