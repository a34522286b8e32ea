import ArgumentParser
import Foundation

/// `tradewire`: the command-line client of tradewired (PROTOCOL §5).
///
/// Exit codes: 0 ok, 1 the daemon answered with an error, 2 bad usage, 3 cannot connect.
@main
struct Tradewire: AsyncParsableCommand {
    /// Same as the daemon's version (`Daemon.version`); the CLI does not link the server.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "tradewire",
        abstract: "Talk to tradewired: publish and watch events, run the trading pipeline, inspect the daemon.",
        discussion: """
            The socket is found as the daemon finds it: --socket PATH, then TRADEWIRE_SOCKET, then \
            $XDG_RUNTIME_DIR/tradewire.sock, then /tmp/tradewire-$UID/tradewire.sock. Every command \
            takes --json to print the raw JSON-RPC result on one line; --socket and --json may also \
            come before the subcommand (tradewire --json status).

            Examples:
              tradewire ping
              tradewire run AAPL MSFT --dry-run
              tradewire subscribe '*' --json | jq .event_type
              tradewire publish price.tick '{"symbol":"SPY","last":512.3}'

            Exit codes: 0 ok, 1 the daemon returned an error, 2 bad usage, 3 cannot connect.

            Shell completions: tradewire --generate-completion-script bash|zsh|fish
            """,
        version: version,
        subcommands: [
            Ping.self, Status.self, Stats.self, History.self, Publish.self, Subscribe.self,
            Run.self, Loop.self, ServeStage.self, Stages.self, Call.self, Discover.self, Shutdown.self, Journal.self,
            Portfolio.self, Replay.self,
            Halt.self, Reduce.self, Resume.self,
            Consume.self, Consumers.self, DeadLetters.self, Cluster.self,
        ])

    /// Parses by hand so that usage errors exit 2 (ArgumentParser's default is 64) and
    /// errors already reported by a command keep their exit code.
    static func main() async {
        do {
            var command = try parseAsRoot(ConnectionOptions.hoisted(Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(ExitStatus.ok.code)
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { Console.out(message) }
                Foundation.exit(ExitStatus.ok.code)
            }
            if !message.isEmpty { Console.err(message) }
            Foundation.exit(code == .validationFailure ? ExitStatus.usage.code : code.rawValue)
        }
    }
}

/// The CLI's exit codes.
enum ExitStatus: Int32 {
    case ok = 0
    case rpcError = 1
    case usage = 2
    case cannotConnect = 3

    var code: Int32 { rawValue }
    var exitCode: ExitCode { ExitCode(rawValue) }
}
