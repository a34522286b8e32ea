import TradewireJSON

/// A problem one stage met without stopping the iteration (`errors` in the run result).
public struct StageError: Sendable, Equatable, JSONEncodable {
    public var stage: PipelineStage
    public var symbol: String?
    public var message: String

    public init(stage: PipelineStage, symbol: String? = nil, message: String) {
        self.stage = stage
        self.symbol = symbol
        self.message = message
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("stage", stage.rawValue)
        if let symbol { writer.field("symbol", symbol) }
        writer.field("message", message)
        writer.endObject()
    }
}
