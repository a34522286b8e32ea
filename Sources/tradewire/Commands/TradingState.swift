import ArgumentParser
import Foundation
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Halt: TradingStateSetting {
        static let configuration = CommandConfiguration(
            abstract: "Halt trading: risk rejects every order (the kill switch).",
            discussion: """
                The halt is journaled and survives a restart; `tradewire resume` lifts it.

                Examples:
                  tradewire halt "broker maintenance"
                  tradewire halt feed looks wrong --json
                """)

        static let state = "halted"

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("Why (required; the words are joined with spaces).", valueName: "reason"))
        var reason: [String] = []
    }

    struct Reduce: TradingStateSetting {
        static let configuration = CommandConfiguration(
            abstract: "Reduce only: risk approves only orders that shrink an existing position.",
            discussion: """
                A SELL against a long position or a BUY against a short one, capped at its size; \
                everything else is rejected.

                Examples:
                  tradewire reduce "closing out before the holiday"
                """)

        static let state = "reducing"

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("Why (required; the words are joined with spaces).", valueName: "reason"))
        var reason: [String] = []
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume trading after a halt or reduce (state active).",
            discussion: """
                Examples:
                  tradewire resume
                  tradewire resume "feed fixed"
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("Why (default: resumed by operator).", valueName: "reason"))
        var reason: [String] = []

        func run() async throws {
            let text = TradingStateCommand.joined(reason)
            try await TradingStateCommand.set(
                "active", reason: text.isEmpty ? TradingStateCommand.defaultResumeReason : text, connection)
        }
    }
}

/// `halt` and `reduce`: a state and a required reason.
protocol TradingStateSetting: AsyncParsableCommand {
    static var state: String { get }
    var connection: ConnectionOptions { get }
    var reason: [String] { get }
}

extension TradingStateSetting {
    func validate() throws { try TradingStateCommand.validate(reason) }

    func run() async throws {
        try await TradingStateCommand.set(Self.state, reason: TradingStateCommand.joined(reason), connection)
    }
}

/// What halt, reduce and resume share: `set_trading_state`, and the line they print.
enum TradingStateCommand {
    static let defaultResumeReason = "resumed by operator"
    /// The daemon's limit on a reason, in characters.
    static let maximumReasonLength = 1024

    static func joined(_ words: [String]) -> String {
        words.joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    static func validate(_ words: [String]) throws {
        let text = joined(words)
        guard !text.isEmpty else { throw ValidationError("give a reason, e.g. \"feed looks wrong\".") }
        guard text.count <= maximumReasonLength else {
            throw ValidationError("the reason is \(text.count) characters; at most \(maximumReasonLength).")
        }
    }

    static func set(_ state: String, reason: String, _ connection: ConnectionOptions) async throws {
        try await CommandRunner.run(connection) { client in
            let result = try await client.call(
                "set_trading_state", ["state": JSONValue(state), "reason": JSONValue(reason)],
                timeout: CommandRunner.quickTimeout)
            CommandRunner.emit(result, json: connection.json) { [line($0)] }
        }
    }

    /// `trading halted since 2026-11-30T14:38:21.555000Z: REASON (was active)`.
    static func line(_ state: JSONValue) -> String {
        var text = "trading " + summary(state)
        if let previous = state["previous"]?.stringValue, previous != state["state"]?.stringValue {
            text += " (was \(previous))"
        }
        return text
    }

    /// `halted since 2026-11-30T14:38:21.555000Z: REASON` (`tradewire status`'s trading line).
    static func summary(_ state: JSONValue) -> String {
        "\(Format.cell(state["state"])) since \(Format.cell(state["since"])): \(Format.cell(state["reason"]))"
    }
}
