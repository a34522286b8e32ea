import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish one event.",
            discussion: """
                DATA is JSON text; `-` reads it from stdin; without it the data is null. Publishing \
                a pipeline event type (data_ready, signals_ready, …) runs the rest of the pipeline \
                before the reply. --meta values are strings unless they parse as a JSON number or boolean.

                Examples:
                  tradewire publish price.tick '{"symbol":"SPY","last":512.3}'
                  tradewire publish alert --meta source=cron --meta priority=2
                  curl -s https://example.com/bars.json | tradewire publish data_ready -
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("Event type: 1-128 chars of A-Z a-z 0-9 _ . : -", valueName: "type"))
        var eventType: String

        @Argument(help: ArgumentHelp("Event data as JSON, or - to read it from stdin.", valueName: "json"))
        var data: String?

        @Option(name: .customLong("meta"), help: ArgumentHelp("Metadata entry (repeatable).", valueName: "key=value"))
        var metadata: [String] = []

        func validate() throws {
            try EventNames.validate(eventType, pattern: false)
            if let data, data != "-" { _ = try JSONInput.parse(data, what: "data") }
            for entry in metadata { _ = try JSONInput.metadataEntry(entry) }
        }

        func run() async throws {
            let value = try JSONInput.resolve(data, what: "data") ?? .null
            var meta = JSONObject()
            for entry in metadata {
                let (key, value) = try JSONInput.metadataEntry(entry)
                meta[key] = value
            }
            try await CommandRunner.run(connection) { client in
                var params: JSONObject = ["event_type": JSONValue(eventType), "data": value]
                if !meta.isEmpty { params["metadata"] = .object(meta) }
                // A pipeline event runs the rest of the chain before the reply.
                let result = try await client.call("publish", params, timeout: CommandRunner.longTimeout)
                CommandRunner.emit(result, json: connection.json, human: Self.render)
            }
        }

        static func render(_ result: JSONValue) -> [String] {
            let subscribers = result["subscribers"]?.intValue ?? 0
            var line =
                "published seq \(Format.cell(result["seq"])) (\(Format.cell(result["event_type"])), "
                + "\(subscribers) subscriber\(subscribers == 1 ? "" : "s"))"
            if let iteration = result["iteration"] {
                let completed = result["completed"]?.boolValue == true ? "completed" : "did not complete"
                line += "; iteration \(Format.cell(iteration)) (\(Format.cell(result["iteration_id"]))) \(completed)"
            }
            return [line]
        }
    }
}
