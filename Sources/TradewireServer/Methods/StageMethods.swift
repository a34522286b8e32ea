import TradewireBus
import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// `register_stage` and `unregister_stage` (PROTOCOL §9).
enum StageMethods {
    static func register(into registry: inout MethodRegistry<RequestContext>) {
        registry.register(
            "register_stage", summary: "Serve a pipeline stage from this connection (stage.handle calls come back).",
            params: RegisterStageParams.self,
            result: [
                "type": "object",
                "required": [
                    "registration", "stage", "name", "mode", "timeout_ms", "on_failure", "durable", "members",
                ],
            ], handler: registerStage)
        registry.register(
            "unregister_stage", summary: "Leave a group (registration) or remove a whole group (stage and name).",
            params: UnregisterStageParams.self, result: ["type": "object", "required": ["removed"]],
            handler: unregisterStage)
    }

    static func registerStage(_ params: RegisterStageParams, _ context: RequestContext) throws(RPCError)
        -> MethodOutcome
    {
        let registration = try context.daemon.stages.register(
            stage: params.stage, name: params.name, mode: params.mode, timeoutMilliseconds: params.timeoutMilliseconds,
            onFailure: params.onFailure, durable: params.durable, concurrency: params.concurrency,
            connection: context.connection)
        if registration.options.durable && registration.members == 1 {
            context.daemon.pipeline.saveStageGroups(context.daemon.stages)
        }
        return .result(registration)
    }

    static func unregisterStage(_ params: UnregisterStageParams, _ context: RequestContext) throws(RPCError)
        -> MethodOutcome
    {
        let stages = context.daemon.stages
        let removed: Int =
            switch params.target {
            case .registration(let id): stages.unregister(registration: id, connectionID: context.connection.id)
            case .group(let stage, let name): stages.unregister(stage: stage, name: name)
            }
        if case .group = params.target, removed > 0 { context.daemon.pipeline.saveStageGroups(stages) }
        return .result(["removed": JSONValue(removed)] as JSONValue)
    }
}

/// Parameter declarations of the stage methods.
enum StageParams {
    static let servable = StageRegistry.servable.map(\.rawValue)

    static let stage = Param<String>.string(
        "stage", summary: "data, strategy, quant, risk or execution.",
        schema: ["type": "string", "enum": .array(servable.map { JSONValue($0) })]
    ).map { text, path throws(RPCError) in
        guard let stage = PipelineStage(rawValue: text), StageRegistry.servable.contains(stage) else {
            throw .invalidParams(path: path, "unknown stage \"\(text)\"; one of \(servable.joined(separator: ", "))")
        }
        return stage
    }

    static let name = Param<String>.string(
        "name", summary: "1-64 chars of A-Z a-z 0-9 _ . : - (members with the same stage and name form a group).",
        schema: ["type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"]
    ).map { text, path throws(RPCError) in
        guard (1...64).contains(text.utf8.count) else {
            throw .invalidParams(path: path, "must be 1-64 characters, got \(text.utf8.count)")
        }
        do { try EventName.validateType(text) } catch { throw .invalidParams(path: path, "\(error)") }
        return text
    }
}

struct RegisterStageParams: MethodParameters {
    static let mode = Param<StageMode?>.optionalChoice(
        "mode", of: StageMode.self,
        summary: "after (default): revise the output; replace: produce it instead of the built-in agent.")
    static let timeout = Param<Int?>.optionalInt(
        "timeout_ms", in: 1...300_000, summary: "Per call (default 5000); the iteration's deadline also applies.")
    static let onFailure = Param<StageFailurePolicy?>.optionalChoice(
        "on_failure", of: StageFailurePolicy.self,
        summary: "skip, fallback (replace only) or fail_closed; default fail_closed for risk and execution.")
    static let concurrency = Param<Int?>.optionalInt(
        "concurrency", in: 1...1024, summary: "Calls this member takes at once (default 1).")
    static let durable = Param<Bool?>.optionalBool(
        "durable", summary: "Keep the group (its calls failing no_member) after its last member leaves.")
    static let parameters = [
        StageParams.stage.description, StageParams.name.description, mode.description, timeout.description,
        onFailure.description, concurrency.description, durable.description,
    ]

    var stage: PipelineStage
    var name: String
    var mode: StageMode?
    var timeoutMilliseconds: Int?
    var onFailure: StageFailurePolicy?
    var concurrency: Int
    var durable: Bool?

    init(from params: ParamReader) throws(RPCError) {
        stage = try params(StageParams.stage)
        name = try params(StageParams.name)
        mode = try params(Self.mode)
        timeoutMilliseconds = try params(Self.timeout)
        onFailure = try params(Self.onFailure)
        concurrency = try params(Self.concurrency) ?? 1
        durable = try params(Self.durable)
    }
}

struct UnregisterStageParams: MethodParameters {
    static let registration = Param<String?>.optionalString(
        "registration", summary: "One of this connection's registrations (r-N).")
    static let stage = Param<String?>.optionalString("stage", summary: "With name: remove the whole group.")
    static let name = Param<String?>.optionalString("name", summary: "With stage: remove the whole group.")
    static let parameters = [registration.description, stage.description, name.description]

    enum Target {
        case registration(String)
        case group(PipelineStage, String)
    }
    var target: Target

    init(from params: ParamReader) throws(RPCError) {
        switch (try params(Self.registration), params.has(Self.stage), params.has(Self.name)) {
        case (let id?, false, false):
            target = .registration(id)
        case (nil, true, true):
            target = .group(try params(StageParams.stage), try params(StageParams.name))
        default:
            throw .invalidParams(path: "", "give either registration, or both stage and name")
        }
    }
}
