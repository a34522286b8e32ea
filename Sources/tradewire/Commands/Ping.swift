import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Ping: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that the daemon answers, and how fast.",
            discussion: """
                Prints `pong (0.3 ms)` with the round-trip time; exit 3 when no daemon listens.

                Examples:
                  tradewire ping
                  tradewire ping --socket /tmp/tw.sock --json
                """)

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                let clock = ContinuousClock()
                let start = clock.now
                let result = try await client.call("ping", timeout: CommandRunner.quickTimeout)
                let elapsed = clock.now - start
                CommandRunner.emit(result, json: connection.json) { _ in
                    let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
                    return ["pong (\(Format.fixed(ms, 1)) ms)"]
                }
            }
        }
    }
}
