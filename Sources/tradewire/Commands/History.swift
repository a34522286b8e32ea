import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recorded events, oldest first.",
            discussion: """
                Filters by type pattern and seq first, then keeps the last --limit records. The \
                table shows SEQ, TIME (UTC), TYPE, SUBS (client subscribers at publish time) and \
                the data, compact and cut to fit (--wide keeps it whole).

                Examples:
                  tradewire history --limit 20
                  tradewire history --type 'audit_*' --since 100
                  tradewire history --json --type data_ready | jq '.events[].seq'
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(
            name: .customLong("type"), help: ArgumentHelp("Event type pattern (* and ? allowed).", valueName: "pattern")
        )
        var eventType: String?

        @Option(help: "Keep only the last N matching records (0: all).")
        var limit: Int?

        @Option(name: .customLong("since"), help: ArgumentHelp("Only records with seq > SEQ.", valueName: "seq"))
        var sinceSeq: Int?

        @Flag(help: "Do not truncate the DATA column.")
        var wide = false

        func validate() throws {
            if let eventType { try EventNames.validate(eventType, pattern: true) }
            if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more.") }
            if let sinceSeq, sinceSeq < 0 { throw ValidationError("--since must be 0 or more.") }
        }

        func run() async throws {
            var params: JSONObject = [:]
            if let eventType { params["event_type"] = JSONValue(eventType) }
            if let limit { params["limit"] = JSONValue(limit) }
            if let sinceSeq { params["since_seq"] = JSONValue(sinceSeq) }
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("get_event_history", params, timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json) { render($0) }
            }
        }

        func render(_ history: JSONValue) -> [String] {
            let events = history["events"]?.arrayValue ?? []
            guard !events.isEmpty else { return ["no events"] }
            var table = Table(["SEQ", "TIME", "TYPE", "SUBS", "DATA"], alignments: [.right, .left, .left, .right])
            for event in events {
                table.append([
                    Format.cell(event["seq"]), Format.time(event["timestamp"]), Format.cell(event["event_type"]),
                    Format.cell(event["subscriber_count"]),
                    Format.truncate(JSONWriter.string(event["data"] ?? .null), to: wide ? nil : 60),
                ])
            }
            return table.render()
        }
    }
}
