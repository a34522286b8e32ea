import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Stages: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the remote stage groups: members, calls in flight, failures, latency.",
            discussion: """
                One row per group (get_status.stages), stage by stage in pipeline order and, within a \
                stage, in the order the daemon calls them. MEMBERS counts connected members (a durable \
                group may have none); CALLS, FAILURES, TIMEOUTS and LATE (replies after the deadline) \
                count since the group was created. With --json, the stages object on one line.

                Examples:
                  tradewire stages
                  tradewire stages --json | jq '.risk[] | select(.members == 0) | .name'
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let status = try await client.call("get_status", timeout: CommandRunner.quickTimeout)
                let stages = status["stages"] ?? .object([:])
                CommandRunner.emit(stages, json: connection.json, human: Self.render)
            }
        }

        static let headers = [
            "STAGE", "NAME", "MODE", "ON_FAILURE", "DURABLE", "MEMBERS", "IN_FLIGHT", "CALLS", "FAILURES",
            "TIMEOUTS", "LATE", "P50_MS", "P99_MS",
        ]

        static func render(_ stages: JSONValue) -> [String] {
            var table = Table(
                headers, alignments: Array(repeating: .left, count: 5) + Array(repeating: .right, count: 8))
            let known = StageKind.allCases.map(\.rawValue)
            let others = (stages.objectValue?.keys ?? []).filter { !known.contains($0) }
            for stage in known + others {
                for group in stages[stage]?.arrayValue ?? [] {
                    table.append([
                        stage, Format.cell(group["name"]), Format.cell(group["mode"]), Format.cell(group["on_failure"]),
                        Format.cell(group["durable"]), Format.cell(group["members"]), Format.cell(group["in_flight"]),
                        Format.cell(group["calls"]), Format.cell(group["failures"]), Format.cell(group["timeouts"]),
                        Format.cell(group["late_replies"]), Format.fixed(group["p50_ms"], 1),
                        Format.fixed(group["p99_ms"], 1),
                    ])
                }
            }
            return table.rows.isEmpty ? ["no stage groups"] : table.render()
        }
    }
}
