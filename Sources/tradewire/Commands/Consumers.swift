import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Consumers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the durable consumers: position, pending, redeliveries, dead letters, members.",
            discussion: """
                Examples:
                  tradewire consumers
                  tradewire consumers --json | jq '.consumers[] | select(.pending > 0) | .consumer'
                  tradewire consumers delete billing
                """,
            subcommands: [List.self, Delete.self],
            defaultSubcommand: List.self)
    }
}

extension Tradewire.Consumers {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One row per consumer (get_consumers); the default.",
            discussion: """
                POSITION: every matching event up to this seq has gone out at least once; PENDING: \
                events out and not yet acknowledged; REDELIVERED: how many of those are past their \
                first attempt; LAG: the newest seq minus POSITION; DEAD: its dead letters (tradewire \
                dlq list); MEMBERS: the connections subscribed with it now. With --json, the \
                get_consumers result on one line (with more fields).

                Examples:
                  tradewire consumers
                  tradewire consumers list --json
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("get_consumers", timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
        }

        static let headers = [
            "CONSUMER", "PATTERN", "POSITION", "PENDING", "REDELIVERED", "LAG", "DEAD", "MEMBERS", "ACK_WAIT_MS",
            "MAX_DELIVER", "MAX_IN_FLIGHT",
        ]

        static func render(_ result: JSONValue) -> [String] {
            var table = Table(headers, alignments: [.left, .left] + Array(repeating: .right, count: 9))
            for row in result["consumers"]?.arrayValue ?? [] {
                table.append(
                    [
                        row["consumer"], row["pattern"], row["position"], row["pending"], row["redelivered"],
                        row["lag"], row["dead_letters"], row["members"], row["ack_wait_ms"], row["max_deliver"],
                        row["max_in_flight"],
                    ].map(Format.cell))
            }
            return table.rows.isEmpty ? ["no consumers"] : table.render()
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a consumer: its position, pending events and dead letters (delete_consumer).",
            discussion: """
                Its members stop receiving events. A later `tradewire consume NAME` creates it anew, \
                starting with the next event.

                Examples:
                  tradewire consumers delete billing
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("The consumer's name.", valueName: "name"))
        var name: String

        func validate() throws { try EventNames.validateConsumer(name) }

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call(
                    "delete_consumer", ["consumer": JSONValue(name)], timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json) { result in
                    (result["removed"]?.intValue ?? 0) > 0 ? ["deleted consumer \(name)"] : ["no consumer \(name)"]
                }
            }
        }
    }
}
