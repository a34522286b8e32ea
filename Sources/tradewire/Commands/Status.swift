import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the daemon's version, socket, mode, uptime, loop and trading state.",
            discussion: """
                Examples:
                  tradewire status
                  tradewire status --json | jq .loop.running
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("get_status", timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
        }

        static func render(_ status: JSONValue) -> [String] {
            var list = KeyValueList()
            list.append("version", Format.cell(status["version"]))
            list.append("api_level", Format.cell(status["api_level"]))
            list.append("pid", Format.cell(status["pid"]))
            list.append("socket", Format.cell(status["socket"]))
            list.append("mode", Format.cell(status["mode"]))
            list.append("uptime", Format.duration(seconds: status["uptime_seconds"]?.doubleValue))
            let loop = status["loop"]
            let running = loop?["running"]?.boolValue == true
            list.append("loop", running ? "running" : "stopped")
            list.append("loop interval", Format.number(loop?["interval_seconds"]) + " s")
            list.append("loop iterations", Format.cell(loop?["iterations"]))
            if let last = loop?["last_iteration"], !last.isNull {
                let summary = [
                    "#\(Format.cell(last["iteration"])) (\(Format.cell(last["iteration_id"])))",
                    "at \(Format.cell(last["finished_at"]))",
                    "in \(Format.duration(seconds: last["duration_seconds"]?.doubleValue)):",
                    "\(Format.cell(last["signals"])) signals, \(Format.cell(last["approved"])) approved, "
                        + "\(Format.cell(last["executed"])) executed, \(Format.cell(last["errors"])) errors",
                ].joined(separator: " ")
                list.append("last iteration", summary)
            } else {
                list.append("last iteration", "none")
            }
            if let trading = status["trading_state"], !trading.isNull {
                list.append("trading", TradingStateCommand.summary(trading))
            }
            return list.render()
        }
    }
}
