import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Discover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the daemon's OpenRPC document (every method with its params and result).",
            discussion: """
                Examples:
                  tradewire discover
                  tradewire discover --json | jq -r '.methods[].name'
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("rpc.discover", timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json) { [PrettyJSON.string($0)] }
            }
        }
    }
}
