import ArgumentParser
import TradewireRPC

/// Options every command shares: where the daemon is and how to print.
struct ConnectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Socket of tradewired (default: TRADEWIRE_SOCKET, $XDG_RUNTIME_DIR/tradewire.sock, /tmp/tradewire-$UID/tradewire.sock).",
            valueName: "path"),
        completion: .file())
    var socket: String?

    @Flag(help: "Print the raw JSON result, compact, one line (one line per event for subscribe).")
    var json = false

    func validate() throws {
        if let socket, socket.utf8.count > SocketPath.maximumLength {
            throw ValidationError(
                "--socket path is \(socket.utf8.count) bytes; a Unix socket path holds at most \(SocketPath.maximumLength)."
            )
        }
    }
}

extension ConnectionOptions {
    /// Moves connection options written before the subcommand (`tradewire --json ping`) to
    /// the end of the arguments (before a `--`), where the subcommand's option group parses them.
    static func hoisted(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            if argument == "--json" || argument.hasPrefix("--socket=") {
                leading.append(argument)
                index += 1
            } else if argument == "--socket", index + 1 < arguments.endIndex {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else {
                break
            }
        }
        guard !leading.isEmpty, index < arguments.endIndex else { return arguments }
        var rest = Array(arguments[index...])
        let insertion = rest.firstIndex(of: "--") ?? rest.endIndex
        rest.insert(contentsOf: leading, at: insertion)
        return rest
    }
}
