import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show bus counters, subscriptions, published event types and pipeline latencies.",
            discussion: """
                Prints four tables: counters; event types with their client subscribers and \
                in-daemon handlers; events published per type; pipeline stages with count, p50 and p99.

                Examples:
                  tradewire stats
                  tradewire stats --json | jq .pipeline.stages
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("get_stats", timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
        }

        static let counterKeys = [
            "total_events_published", "events_published", "events_delivered", "events_dropped",
            "handler_errors", "total_event_types", "total_subscribers", "connections",
            "history_size", "history_capacity", "last_seq",
        ]

        static func render(_ stats: JSONValue) -> [String] {
            var lines: [String] = []

            var counters = Table(["COUNTER", "VALUE"], alignments: [.left, .right])
            for key in counterKeys where stats[key] != nil { counters.append([key, Format.cell(stats[key])]) }
            counters.append(["uptime", Format.duration(seconds: stats["uptime_seconds"]?.doubleValue)])
            let pipeline = stats["pipeline"]
            for key in ["runs", "failures", "timeouts"] where pipeline?[key] != nil {
                counters.append(["pipeline \(key)", Format.cell(pipeline?[key])])
            }
            if let last = pipeline?["last_duration_seconds"], !last.isNull {
                counters.append(["pipeline last duration", Format.duration(seconds: last.doubleValue)])
            }
            lines += counters.render()

            let subscribers = stats["event_types"]?.objectValue ?? [:]
            let handlers = stats["internal_handlers"]?.objectValue ?? [:]
            var types = Table(["EVENT TYPE", "SUBSCRIBERS", "HANDLERS"], alignments: [.left, .right, .right])
            for type in Set(subscribers.keys + handlers.keys).sorted() {
                types.append([type, Format.cell(subscribers[type] ?? 0), Format.cell(handlers[type] ?? 0)])
            }
            lines += [""] + types.render()

            var published = Table(["PUBLISHED TYPE", "COUNT"], alignments: [.left, .right])
            for member in stats["published_by_type"]?.objectValue ?? [:] {
                published.append([member.key, Format.cell(member.value)])
            }
            lines += [""] + published.render()

            var stages = Table(["STAGE", "COUNT", "P50 MS", "P99 MS"], alignments: [.left, .right, .right, .right])
            for member in pipeline?["stages"]?.objectValue ?? [:] {
                stages.append([
                    member.key, Format.cell(member.value["count"]),
                    Format.fixed(member.value["p50_ms"], 3), Format.fixed(member.value["p99_ms"], 3),
                ])
            }
            lines += [""] + stages.render()
            return lines
        }
    }
}
