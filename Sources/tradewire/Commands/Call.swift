import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Call: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Call any JSON-RPC method with a params object and print the result.",
            discussion: """
                PARAMS is a JSON object; `-` reads it from stdin; without it, {}. The result is \
                printed as indented JSON (compact with --json). `tradewire discover` lists the methods.

                Examples:
                  tradewire call get_event_history '{"limit":5,"include_data":false}'
                  echo '{"subscription":"s-1"}' | tradewire call unsubscribe -
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: "Method name, e.g. get_stats.")
        var method: String

        @Argument(help: ArgumentHelp("Params as a JSON object, or - to read them from stdin.", valueName: "json"))
        var params: String?

        func validate() throws {
            guard !method.isEmpty else { throw ValidationError("The method name is empty.") }
            if let params, params != "-" {
                let value = try JSONInput.parse(params, what: "params")
                guard value.objectValue != nil else {
                    throw ValidationError("params must be a JSON object, got \(value.typeName).")
                }
            }
        }

        func run() async throws {
            let value = try JSONInput.resolve(params, what: "params") ?? .object([:])
            guard let object = value.objectValue else {
                Console.err("tradewire: params on stdin must be a JSON object, got \(value.typeName)")
                throw ExitStatus.usage.exitCode
            }
            try await CommandRunner.run(connection) { client in
                let result = try await client.call(method, object, timeout: CommandRunner.longTimeout)
                CommandRunner.emit(result, json: connection.json) { [PrettyJSON.string($0)] }
            }
        }
    }
}
