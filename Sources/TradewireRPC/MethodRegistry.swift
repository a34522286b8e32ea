import TradewireJSON

/// What a method handler produced.
public enum MethodOutcome: Sendable {
    /// The encoded `result` JSON, ready now (answered without leaving the caller's thread).
    case success([UInt8])
    case failure(RPCError)
    /// The encoded `result`, then `afterWrite` once the response is queued (inside a batch:
    /// once the batch array is). `subscribe` goes live this way, so that its ack precedes
    /// its first event; `shutdown` answers this way before the drain begins.
    case successThen([UInt8], afterWrite: @Sendable () -> Void)
    /// Work that must be awaited (a pipeline run, in-process handlers); it reports its outcome.
    case deferred(@Sendable () async -> Result<[UInt8], RPCError>)
    /// Work that must be awaited, answered like ``successThen(_:afterWrite:)`` when it
    /// succeeds: its `afterWrite` runs once the response is queued (a cluster consumer's
    /// `subscribe`, whose ack must precede its first event).
    case deferredThen(@Sendable () async -> Result<([UInt8], afterWrite: @Sendable () -> Void), RPCError>)
    /// An answer that another thread gives later through the completion (a publish answered
    /// once its journal batch committed), without a hop through a task.
    case later(@Sendable (_ complete: @escaping @Sendable (Result<[UInt8], RPCError>) -> Void) -> Void)

    /// Encodes a result value now.
    public static func result(_ value: some JSONEncodable) -> MethodOutcome { .success(JSONWriter.encode(value)) }
}

/// Documentation of one parameter, for validation and `rpc.discover`.
public struct ParamDescription: Sendable {
    public var name: String
    /// A JSON Schema fragment.
    public var schema: JSONValue
    public var required: Bool
    public var summary: String

    public init(_ name: String, schema: JSONValue, required: Bool = false, summary: String) {
        self.name = name
        self.schema = schema
        self.required = required
        self.summary = summary
    }
}

/// One method's documentation: name, params and result schema.
public struct MethodDescription: Sendable {
    public var name: String
    public var summary: String
    public var params: [ParamDescription]
    public var result: JSONValue

    public init(_ name: String, summary: String, params: [ParamDescription] = [], result: JSONValue) {
        self.name = name
        self.summary = summary
        self.params = params
        self.result = result
    }
}

/// A method: its description and its handler. Handlers run on the connection's thread and
/// must return quickly; anything slow goes in ``MethodOutcome/deferred(_:)``.
public struct RPCMethod<Context: Sendable>: Sendable {
    public typealias Handler = @Sendable (RPCRequest, Context) throws(RPCError) -> MethodOutcome
    public let description: MethodDescription
    let allowedParams: Set<String>
    let handler: Handler
}

/// Collects methods while the server is being built; ``freeze()`` turns it into the
/// immutable ``RPCDispatcher`` that serves requests.
public struct MethodRegistry<Context: Sendable> {
    private var methods: [String: RPCMethod<Context>] = [:]
    private var order: [String] = []

    public init() {}

    /// Registers a method whose parameters are the declared type `P`: they are decoded before
    /// `handler` runs, and `rpc.discover` lists them. Registering a name twice replaces the
    /// earlier one.
    public mutating func register<P: MethodParameters>(
        _ name: String, summary: String, params: P.Type, result: JSONValue,
        handler: @escaping @Sendable (P, Context) throws(RPCError) -> MethodOutcome
    ) {
        let description = MethodDescription(name, summary: summary, params: P.parameters, result: result)
        register(description) { request, context throws(RPCError) in
            try handler(try P(from: ParamReader(request.params, rawData: request.rawData)), context)
        }
    }

    /// Registers a method with a raw handler; registering a name twice replaces the earlier one.
    public mutating func register(_ description: MethodDescription, handler: @escaping RPCMethod<Context>.Handler) {
        if methods[description.name] == nil { order.append(description.name) }
        methods[description.name] = RPCMethod(
            description: description, allowedParams: Set(description.params.map(\.name)), handler: handler)
    }

    public func freeze() -> RPCDispatcher<Context> {
        RPCDispatcher(methods: methods, order: order)
    }
}

/// The frozen method table: looks a request's method up, checks parameter names, runs it.
public struct RPCDispatcher<Context: Sendable>: Sendable {
    let methods: [String: RPCMethod<Context>]
    /// Method names in registration order.
    public let order: [String]

    public var descriptions: [MethodDescription] { order.compactMap { methods[$0]?.description } }

    public func dispatch(_ request: RPCRequest, context: Context) -> MethodOutcome {
        guard let method = methods[request.method] else { return .failure(.methodNotFound(request.method)) }
        var unknown: [JSONDecodingError] = []
        for member in request.params where !method.allowedParams.contains(member.key) {
            unknown.append(JSONDecodingError(path: jsonPointer("", member.key), message: "unknown parameter"))
        }
        guard unknown.isEmpty else { return .failure(.invalidParams(unknown)) }
        do { return try method.handler(request, context) } catch { return .failure(error) }
    }

    /// An OpenRPC 1.x document describing every method (`rpc.discover`).
    public func openRPCDocument(title: String, version: String) -> JSONValue {
        let methodObjects: [JSONValue] = descriptions.map { d in
            [
                "name": JSONValue(d.name),
                "summary": JSONValue(d.summary),
                "paramStructure": "by-name",
                "params": .array(
                    d.params.map { p in
                        [
                            "name": JSONValue(p.name), "summary": JSONValue(p.summary),
                            "required": JSONValue(p.required),
                            "schema": p.schema,
                        ]
                    }),
                "result": ["name": JSONValue("\(d.name).result"), "schema": d.result],
            ]
        }
        return [
            "openrpc": "1.2.6",
            "info": ["title": JSONValue(title), "version": JSONValue(version)],
            "methods": .array(methodObjects),
        ]
    }
}
