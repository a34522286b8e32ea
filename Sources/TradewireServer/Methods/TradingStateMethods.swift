import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTrading

/// `set_trading_state` (PROTOCOL §12): the operator's kill switch.
enum TradingStateMethods {
    static func register(into registry: inout MethodRegistry<RequestContext>) {
        registry.register(
            "set_trading_state",
            summary:
                "Set the kill switch: active, reducing (only orders that reduce a position) or halted (no orders).",
            params: SetTradingStateParams.self,
            result: ["type": "object", "required": ["state", "previous", "since", "reason"]],
            handler: setTradingState)
    }

    static func setTradingState(_ params: SetTradingStateParams, _ context: RequestContext) throws(RPCError)
        -> MethodOutcome
    {
        let daemon = context.daemon
        // A cluster's trading state is the leader's (PROTOCOL §13): elsewhere the switch is
        // handed to the leader, and its answer returned.
        if !daemon.mayTrade, let handOff = daemon.handOff {
            let sent: JSONValue = ["state": JSONValue(params.state.rawValue), "reason": JSONValue(params.reason)]
            let text = JSONWriter.string(sent)
            return .deferred { await handOff("set_trading_state", text, Daemon.leaderCallTimeout) }
        }
        let controller = daemon.pipeline.tradingState
        return .deferred { .success(JSONWriter.encode(await set(params, controller))) }
    }

    private static func set(_ params: SetTradingStateParams, _ controller: TradingStateController) async -> JSONValue {
        let change = await controller.set(params.state, reason: params.reason, by: .operator)
        return [
            "state": JSONValue(change.current.state.rawValue),
            "previous": JSONValue(change.previous.state.rawValue),
            "since": JSONValue(RFC3339.string(from: change.current.since)),
            "reason": JSONValue(change.current.reason),
        ]
    }

    /// `set_trading_state` handed over by another cluster node (this one leads).
    static func runHandedOff(params text: String, daemon: Daemon) async -> (json: String, isError: Bool) {
        do throws(RPCError) {
            let params = try Daemon.handedOverParams(text, as: SetTradingStateParams.self)
            return (JSONWriter.string(await set(params, daemon.pipeline.tradingState)), false)
        } catch {
            return (JSONWriter.string(error.json), true)
        }
    }
}

struct SetTradingStateParams: MethodParameters {
    static let names = TradingState.allCases.map(\.rawValue)

    static let state = Param<String>.string(
        "state", summary: "active, reducing or halted.",
        schema: ["type": "string", "enum": .array(names.map { JSONValue($0) })]
    ).map { text, path throws(RPCError) in
        guard let state = TradingState(rawValue: text) else {
            throw .invalidParams(path: path, "unknown state \"\(text)\"; one of \(names.joined(separator: ", "))")
        }
        return state
    }

    static let reason = Param<String>.string(
        "reason",
        summary:
            "Why (required, 1-1024 characters, no control characters): quoted in rejections (trading halted: REASON) and in trading_state_changed.",
        schema: [
            "type": "string", "minLength": 1,
            "maxLength": JSONValue(TradingStateController.maximumReasonLength),
        ]
    ).map { text, path throws(RPCError) in
        guard text.contains(where: { !$0.isWhitespace }) else {
            throw .invalidParams(path: path, "must not be empty")
        }
        let limit = TradingStateController.maximumReasonLength
        guard text.count <= limit else {
            throw .invalidParams(path: path, "must be at most \(limit) characters, got \(text.count)")
        }
        // Quoted in log lines and the CLI's one-line output: no line breaks or other controls.
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidParams(path: path, "must not contain control characters (line breaks, tabs, …)")
        }
        return text
    }

    static let parameters = [state.description, reason.description]

    var state: TradingState
    var reason: String

    init(from params: ParamReader) throws(RPCError) {
        state = try params(Self.state)
        reason = try params(Self.reason)
    }
}
