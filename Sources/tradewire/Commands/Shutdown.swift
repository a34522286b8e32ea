import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Shutdown: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the daemon gracefully.",
            discussion: """
                Subscribers get a shutdown notice, a running iteration finishes, the socket is removed.

                Examples:
                  tradewire shutdown
                  tradewire shutdown --socket /tmp/tw.sock
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("shutdown", timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json) { _ in ["daemon is shutting down"] }
            }
        }
    }
}
