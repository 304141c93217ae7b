# bench/cpu_lib.exs: a server's CPU time as the call benchmarks read it
# (bench/client.exs, bench/call_floor.exs), loaded with Code.require_file.
defmodule BenchCPU do
  # CPU time of an OS process, in microseconds: its threads' time on a CPU
  # (schedstat, nanoseconds; threads do not exit during a scenario), or
  # utime + stime (10 ms ticks: 2 us per call over 5,000 calls) where the
  # kernel has no schedstat
  def cpu_us(os_pid) do
    case Path.wildcard("/proc/#{os_pid}/task/*/schedstat") do
      [] ->
        fields = File.read!("/proc/#{os_pid}/stat") |> String.split(")") |> List.last() |> String.split()
        ticks = String.to_integer(Enum.at(fields, 11)) + String.to_integer(Enum.at(fields, 12))
        div(ticks * 1_000_000, 100)

      files ->
        ns =
          for f <- files, reduce: 0 do
            acc ->
              case File.read(f) do
                {:ok, text} -> acc + (text |> String.split() |> hd() |> String.to_integer())
                _ -> acc
              end
          end

        div(ns, 1000)
    end
  end
end
