import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct DeadLetters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dlq",
            abstract: "List, retry or discard dead letters: events a consumer gave up on after max_deliver attempts.",
            discussion: """
                Examples:
                  tradewire dlq list
                  tradewire dlq list --consumer billing --limit 20
                  tradewire dlq retry 7          # delivered to its consumer again, from attempt 1
                  tradewire dlq discard 7
                """,
            subcommands: [List.self, Retry.self, Discard.self])
    }
}

/// A dead letter's id as the user typed it: sent as a JSON number when it is one.
struct DeadLetterID: ExpressibleByArgument {
    var text: String

    init?(argument: String) {
        guard !argument.isEmpty else { return nil }
        text = argument
    }

    var json: JSONValue { Int(text).map { JSONValue($0) } ?? JSONValue(text) }

    /// Calls `method {id}` and prints `human(result)`, or the result with --json.
    func call(
        _ method: String, _ connection: ConnectionOptions, human: (JSONValue) -> [String]
    ) async throws {
        try await CommandRunner.run(connection) { client in
            let result = try await client.call(method, ["id": json], timeout: CommandRunner.quickTimeout)
            CommandRunner.emit(result, json: connection.json, human: human)
        }
    }
}

extension Tradewire.DeadLetters {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One row per dead letter, oldest first (get_dead_letters; reading removes nothing).",
            discussion: """
                ID is what retry and discard take; ATTEMPTS how often it was delivered; LAST_ERROR the \
                error of its last nak (cut to 60 characters; --wide keeps it whole). With --json, the \
                get_dead_letters result on one line (each letter with its event).

                Examples:
                  tradewire dlq list --consumer billing
                  tradewire dlq list --json | jq '.dead_letters[].event.data'
                """)

        @OptionGroup var connection: ConnectionOptions

        @Option(help: ArgumentHelp("Only this consumer's dead letters.", valueName: "name"))
        var consumer: String?

        @Option(help: ArgumentHelp("At most N dead letters.", valueName: "n"))
        var limit: Int?

        @Flag(help: "Do not truncate the errors.")
        var wide = false

        func validate() throws {
            if let consumer { try EventNames.validateConsumer(consumer) }
            if let limit, limit < 1 { throw ValidationError("--limit must be 1 or more.") }
        }

        func run() async throws {
            var params: JSONObject = [:]
            if let consumer { params["consumer"] = JSONValue(consumer) }
            if let limit { params["limit"] = JSONValue(limit) }
            try await CommandRunner.run(connection) { client in
                let result = try await client.call("get_dead_letters", params, timeout: CommandRunner.quickTimeout)
                CommandRunner.emit(result, json: connection.json) { Self.render($0, wide: wide) }
            }
        }

        static func render(_ result: JSONValue, wide: Bool) -> [String] {
            var table = Table(
                ["ID", "CONSUMER", "SEQ", "EVENT_TYPE", "ATTEMPTS", "LAST_FAILED", "LAST_ERROR"],
                alignments: [.right, .left, .right, .left, .right])
            for letter in result["dead_letters"]?.arrayValue ?? [] {
                table.append([
                    Format.cell(letter["id"]), Format.cell(letter["consumer"]), Format.cell(letter["seq"]),
                    Format.cell(letter["event_type"]), Format.cell(letter["attempts"]),
                    Format.time(letter["last_failed"]),
                    Format.truncate(Format.cell(letter["last_error"]), to: wide ? nil : 60),
                ])
            }
            return table.rows.isEmpty ? ["no dead letters"] : table.render()
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver a dead letter to its consumer again, attempts counted from 1 (retry_dead_letter).",
            discussion: """
                An unknown id is an error (dead_letter_not_found, exit 1).

                Examples:
                  tradewire dlq retry 7
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("The dead letter's id (tradewire dlq list).", valueName: "id"))
        var id: DeadLetterID

        func run() async throws {
            try await id.call("retry_dead_letter", connection) { [id] _ in
                ["dead letter \(id.text) goes back to its consumer"]
            }
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a dead letter for good (discard_dead_letter).",
            discussion: """
                An unknown id removes nothing (`no dead letter ID`, exit 0).

                Examples:
                  tradewire dlq discard 7
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("The dead letter's id (tradewire dlq list).", valueName: "id"))
        var id: DeadLetterID

        func run() async throws {
            try await id.call("discard_dead_letter", connection) { [id] result in
                (result["removed"]?.intValue ?? 0) > 0
                    ? ["discarded dead letter \(id.text)"] : ["no dead letter \(id.text)"]
            }
        }
    }
}
