import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Cluster: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the cluster this daemon belongs to: the nodes, the leader, the epoch, each node's lag.",
            discussion: """
                From get_status.cluster. LAG: events in the shared journal the node has not \
                delivered yet (as of its last heartbeat, every 2 s); LAST SEEN: its last \
                heartbeat. A daemon started without --cluster is not in a cluster (exit 1).

                Examples:
                  tradewire cluster
                  tradewire cluster --json | jq .leader
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let status = try await client.call("get_status", timeout: CommandRunner.quickTimeout)
                guard let cluster = status["cluster"], !cluster.isNull else {
                    Console.err("tradewire: this daemon is not in a cluster (start it with --cluster CONNINFO)")
                    throw ExitCode(1)
                }
                CommandRunner.emit(cluster, json: connection.json, human: Self.render)
            }
        }

        static func render(_ cluster: JSONValue) -> [String] {
            var list = KeyValueList()
            list.append("node", Format.cell(cluster["node_id"]))
            list.append("leader", cluster["leader"].map { $0.isNull ? "none" : Format.cell($0) } ?? "none")
            list.append("epoch", Format.cell(cluster["epoch"]))
            list.append("database", Format.cell(cluster["state"]))
            list.append("lag", Format.cell(cluster["lag_events"]) + " events")
            var table = Table(["NODE", "LEADER", "LAST SEEN", "LAG"], alignments: [.left, .left, .left, .right])
            for node in cluster["nodes"]?.arrayValue ?? [] {
                table.append([
                    Format.cell(node["node_id"]), node["leader"]?.boolValue == true ? "yes" : "",
                    Format.time(node["last_seen"]), Format.cell(node["lag_events"]),
                ])
            }
            return list.render() + [""] + (table.rows.isEmpty ? ["no live nodes"] : table.render())
        }
    }
}
