import ArgumentParser
import Foundation
import TradewireClient
import TradewireJSON
import TradewireRPC

/// Connects, runs one command body and turns failures into exit codes.
///
/// - cannot connect → 3 (the message names the socket and how to start the daemon)
/// - a JSON-RPC error → 1 (`tradewire: <message> (<code> <type>)`, plus `data.errors` paths)
/// - a lost connection or timeout → 1
enum CommandRunner {
    static func run(
        _ options: ConnectionOptions, _ body: (TradewireClient) async throws -> Void
    ) async throws {
        let client: TradewireClient
        do {
            client = try await TradewireClient.connect(socketPath: options.socket)
        } catch {
            Console.err(describe(error))
            throw ExitStatus.cannotConnect.exitCode
        }
        do {
            try await body(client)
        } catch {
            await client.close()
            throw report(error)
        }
        await client.close()
    }

    /// Prints `error` and returns what to throw (an `ExitCode`, or the error itself when it
    /// is ArgumentParser's to render).
    static func report(_ error: any Error) -> any Error {
        switch error {
        case let exit as ExitCode:
            return exit
        case let clientError as ClientError:
            switch clientError {
            case .cannotConnect, .untrusted:
                Console.err(describe(clientError))
                return ExitStatus.cannotConnect.exitCode
            case .rpc(let rpc):
                Console.err(describe(rpc))
                return ExitStatus.rpcError.exitCode
            default:
                Console.err("tradewire: \(clientError)")
                return ExitStatus.rpcError.exitCode
            }
        default:
            return error
        }
    }

    /// Names the socket, says why in plain words when the cause is a common one, and how to
    /// start the daemon.
    static func describe(_ error: ClientError) -> String {
        guard case .cannotConnect(let path, let reason) = error else { return "tradewire: \(error)" }
        let why =
            if reason.contains("socket directory") {
                reason
            } else if reason.contains("No such file") {
                "no socket there (is tradewired running?)"
            } else if reason.contains("Connection refused") {
                "nothing is listening (a stale socket file?)"
            } else if reason.contains("Permission denied") { "permission denied" } else { reason }
        return "tradewire: cannot connect to tradewired at \(path): \(why).\n"
            + "Start it with `make run` or `tradewired --socket \(path)`."
    }

    /// `tradewire: <message> (<code> <type>)`; for invalid params `tradewire: invalid
    /// parameters (…)`, then `  at <path>: <message>` once per parameter (the daemon's message
    /// already holds them, so it is not printed twice).
    static func describe(_ error: RPCError) -> String {
        let entries = error.details["errors"]?.arrayValue ?? []
        let headline = entries.isEmpty ? error.message : "invalid parameters"
        var lines = ["tradewire: \(headline) (\(error.code) \(error.type))"]
        for entry in entries {
            let path = entry["path"]?.stringValue ?? ""
            let message = entry["message"]?.stringValue ?? ""
            lines.append("  at \(path.isEmpty ? "/" : path): \(message)")
        }
        return lines.joined(separator: "\n")
    }

    /// Prints a result: compact JSON with `--json`, else the command's human rendering.
    static func emit(_ result: JSONValue, json: Bool, human: (JSONValue) -> [String]) {
        if json {
            Console.out(JSONWriter.string(result))
        } else {
            for line in human(result) { Console.out(line) }
        }
    }
}

extension CommandRunner {
    /// For methods that answer at once.
    static let quickTimeout = Duration.seconds(30)
    /// For methods that may wait for a pipeline iteration (publish of a pipeline event, stop_loop, call).
    static let longTimeout = Duration.seconds(330)
}
