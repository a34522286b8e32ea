import ArgumentParser
import Foundation
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Loop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start or stop the daemon's periodic pipeline loop.",
            discussion: """
                Examples:
                  tradewire loop start --interval 5 --symbols SPY,QQQ
                  tradewire loop stop
                """,
            subcommands: [Start.self, Stop.self])
    }
}

extension Tradewire.Loop {
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run an iteration every interval (updates the interval and symbols when already running).",
            discussion: """
                Without --interval the daemon's configured interval (60 s by default); the minimum is 0.1 s.

                Examples:
                  tradewire loop start
                  tradewire loop start --interval 0.5 --symbols AAPL,MSFT
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Seconds between iterations (at least 0.1).", valueName: "seconds"))
        var interval: Double?

        @Option(help: ArgumentHelp("Comma-separated symbols for the loop.", valueName: "A,B"))
        var symbols: String?

        var symbolList: [String] {
            (symbols ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        func validate() throws {
            if let interval, !(interval >= 0.1 && interval.isFinite) {
                throw ValidationError("--interval must be at least 0.1 seconds.")
            }
            if symbols != nil && symbolList.isEmpty { throw ValidationError("--symbols needs at least one symbol.") }
        }

        func run() async throws {
            var params: JSONObject = [:]
            if let interval { params["interval_seconds"] = JSONValue(interval) }
            if symbols != nil { params["symbols"] = .array(symbolList.map { JSONValue($0) }) }
            let symbolList = symbolList
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("start_loop", params, timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json) { result in
                    let on = symbolList.isEmpty ? "" : " on \(symbolList.joined(separator: ", "))"
                    return ["loop running every \(Format.number(result["interval_seconds"])) s\(on)"]
                }
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the loop (an iteration in flight finishes first).",
            discussion: """
                Examples:
                  tradewire loop stop
                  tradewire loop stop --json | jq .iterations
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                // stop_loop waits for an iteration in flight, which runs under the pipeline deadline.
                let result = try await client.call("stop_loop", timeout: CommandRunner.longTimeout)
                CommandRunner.emit(result, json: connection.json) { result in
                    let n = result["iterations"]?.intValue ?? 0
                    return ["loop stopped after \(n) iteration\(n == 1 ? "" : "s")"]
                }
            }
        }
    }
}
