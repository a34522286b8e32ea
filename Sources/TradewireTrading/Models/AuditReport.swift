import Foundation
import TradewireJSON

/// The kind of an ``AuditReport``; raw values are the wire strings.
public enum AuditReportType: String, Sendable, Hashable, CaseIterable, JSONEncodable {
    case iteration
    case daily
    case weekly

    public func encodeJSON(to writer: inout JSONWriter) { writer.write(rawValue) }
}

/// The audit stage's output.
///
/// JSON: `{"report_type", "timestamp", "summary", "metrics": {...}, "recommendations": null | str}`.
/// Decoding requires `report_type` and `summary`; `timestamp` defaults to now, `metrics` to `{}`.
public struct AuditReport: Sendable, JSONModel {
    public var reportType: AuditReportType
    public var timestamp: Date
    /// A deterministic one-paragraph narrative.
    public var summary: String
    /// Key order is part of the contract (see ``AuditAgent``).
    public var metrics: JSONObject
    public var recommendations: String?

    public init(
        reportType: AuditReportType, timestamp: Date, summary: String, metrics: JSONObject = JSONObject(),
        recommendations: String? = nil
    ) {
        self.reportType = reportType
        self.timestamp = timestamp
        self.summary = summary
        self.metrics = metrics
        self.recommendations = recommendations
    }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("report_type", reportType)
        writer.field("timestamp", timestamp)
        writer.field("summary", summary)
        writer.field("metrics", metrics)
        writer.field("recommendations", recommendations)
        writer.endObject()
    }

    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        let typeText = try r.string("report_type")
        guard let type = AuditReportType(rawValue: typeText) else {
            throw JSONDecodingError(path: r.pointer("report_type"), message: "expected one of iteration, daily, weekly")
        }
        reportType = type
        timestamp = try r.optionalDate("timestamp") ?? Date()
        summary = try r.string("summary")
        metrics = try r.optionalObject("metrics")?.object ?? JSONObject()
        recommendations = try r.optionalString("recommendations")
    }
}
