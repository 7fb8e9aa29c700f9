//! Reading and writing one PASCAL VOC annotation file (`Annotations/<id>.xml`); the reader uses quick-xml's
//! event reader, the writer ([`VocAnnotation::to_xml`], [`write_annotation`]) emits VOC's own layout.
//!
//! Only the fields detection needs are kept: `folder`, `filename`, `source/database`,
//! `size/{width,height,depth}`, `segmented` and, for each `object` directly under the root, `name`, `pose`,
//! `truncated`, `difficult` and `bndbox/{xmin,ymin,xmax,ymax}`. Everything else is tolerated and ignored:
//! `path` (often a Windows path in third-party files), the rest of `source`, `owner`, and inside objects
//! `occluded`, `actions`, `point` and the `part`s of VOC's person layout — a `part` has its own `name` and
//! `bndbox`, which are never mistaken for the object's because only direct children of `object` are read.
//!
//! Coordinates are parsed as `f32` ("12", "12.0" and "12.5" all read) and left in VOC's 1-based
//! inclusive convention here; the dataset converts them with `BBox::from_voc` and checks them against
//! the image. Reading is tolerant of what annotation tools get wrong: an object that cannot be read
//! (no `<name>`, a missing or garbled `<bndbox>`, a coordinate that is not a number) is left out of
//! [`VocAnnotation::objects`] and listed in [`VocAnnotation::skipped`] with its number (1-based, in file
//! order) and the reason; a `<size>` that is missing, not a number or zero reads as 0 × 0 ("unknown", the
//! dataset then takes the image's). Only XML that cannot be parsed at all is an error, naming the file.
//!
//! The writer gives what the reader reads back: text is XML-escaped, numbers are written the way VOC
//! writes them (`12` for an integral value, `12.5` otherwise, always the shortest form that reads back
//! to the same `f32`).

use anyhow::{anyhow, bail, Context, Result};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::fmt::Write as _;
use std::path::Path;

/// One `object` of an annotation, coordinates as written (VOC: 1-based, inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct VocObject {
    pub name: String,
    pub pose: String,
    pub truncated: bool,
    pub difficult: bool,
    /// `[xmin, ymin, xmax, ymax]` as in the file.
    pub bndbox: [f32; 4],
}

impl VocObject {
    /// An object of class `name` with box `bndbox` (VOC coordinates), pose `Unspecified`, neither truncated
    /// nor difficult.
    pub fn new(name: impl Into<String>, bndbox: [f32; 4]) -> Self {
        VocObject { name: name.into(), pose: "Unspecified".into(), truncated: false, difficult: false, bndbox }
    }
}

/// The parsed content of one annotation file.
#[derive(Debug, Clone, PartialEq)]
pub struct VocAnnotation {
    /// The `folder` field, e.g. `VOC2007` (empty when absent).
    pub folder: String,
    /// The `filename` field (empty when absent).
    pub filename: String,
    /// The `source/database` field, e.g. `The VOC2007 Database` (empty when absent).
    pub database: String,
    pub width: u32,
    pub height: u32,
    /// The `depth` field (3 when absent).
    pub depth: u32,
    /// The `segmented` field: whether the image has a segmentation mask (false when absent).
    pub segmented: bool,
    pub objects: Vec<VocObject>,
    /// Objects that could not be read, in file order (never written back).
    pub skipped: Vec<SkippedObject>,
}

/// An `<object>` left out by the reader: its number (1-based, in file order, counting every object), its
/// `<name>` (empty when absent) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedObject {
    pub number: usize,
    pub name: String,
    pub reason: String,
}

impl VocAnnotation {
    /// An annotation of the `width`×`height` RGB image `filename` with no objects; `folder` and `database`
    /// empty, not segmented. A size of 0 means unknown (as read from a file without a usable `<size>`).
    pub fn new(filename: impl Into<String>, width: u32, height: u32) -> Self {
        VocAnnotation {
            folder: String::new(),
            filename: filename.into(),
            database: String::new(),
            width,
            height,
            depth: 3,
            segmented: false,
            objects: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Whether `<size>` gave the image's width and height (else both are 0).
    pub fn has_size(&self) -> bool {
        self.width > 0 && self.height > 0
    }

    /// The annotation as a PASCAL VOC XML document (tab-indented, newline-terminated), in VOC's element
    /// order: folder, filename, source/database, size, segmented, then the objects. [`parse_annotation`]
    /// reads it back unchanged, provided the coordinates are finite.
    pub fn to_xml(&self) -> String {
        let mut x = String::from("<annotation>\n");
        element(&mut x, 1, "folder", &self.folder);
        element(&mut x, 1, "filename", &self.filename);
        x.push_str("\t<source>\n");
        element(&mut x, 2, "database", &self.database);
        x.push_str("\t</source>\n\t<size>\n");
        for (tag, value) in [("width", self.width), ("height", self.height), ("depth", self.depth)] {
            element(&mut x, 2, tag, &value.to_string());
        }
        x.push_str("\t</size>\n");
        element(&mut x, 1, "segmented", flag(self.segmented));
        for o in &self.objects {
            object_xml(&mut x, o);
        }
        x.push_str("</annotation>\n");
        x
    }
}

/// Writes `annotation` to `path` as VOC XML ([`VocAnnotation::to_xml`]). A non-finite coordinate (which
/// the reader would refuse) and a failed write are errors naming the file.
pub fn write_annotation(path: &Path, annotation: &VocAnnotation) -> Result<()> {
    for (i, o) in annotation.objects.iter().enumerate() {
        if let Some(v) = o.bndbox.iter().find(|v| !v.is_finite()) {
            bail!("cannot write annotation '{}': object #{} '{}' has coordinate {v}", path.display(), i + 1, o.name);
        }
    }
    std::fs::write(path, annotation.to_xml()).with_context(|| format!("cannot write annotation '{}'", path.display()))
}

/// Appends `<tag>value</tag>` (value escaped) on its own line, indented by `depth` tabs.
fn element(x: &mut String, depth: usize, tag: &str, value: &str) {
    let _ = writeln!(x, "{}<{tag}>{}</{tag}>", "\t".repeat(depth), escape(value));
}

/// A flag as VOC writes it: `1` or `0`.
fn flag(value: bool) -> &'static str {
    if value {
        "1"
    } else {
        "0"
    }
}

/// A coordinate as VOC writes it: an integer when integral (`12`), else the shortest decimal that reads
/// back to the same `f32` (`12.5`).
fn number(value: f32) -> String {
    // Rust's `Display` for floats already prints 12.0 as "12"; only −0 needs care.
    if value == 0.0 {
        "0".into()
    } else {
        value.to_string()
    }
}

/// Appends one `<object>` element.
fn object_xml(x: &mut String, o: &VocObject) {
    x.push_str("\t<object>\n");
    element(x, 2, "name", &o.name);
    element(x, 2, "pose", &o.pose);
    element(x, 2, "truncated", flag(o.truncated));
    element(x, 2, "difficult", flag(o.difficult));
    x.push_str("\t\t<bndbox>\n");
    for (tag, value) in COORDS.iter().zip(o.bndbox) {
        element(x, 3, tag, &number(value));
    }
    x.push_str("\t\t</bndbox>\n\t</object>\n");
}

/// Reads and parses `path`; every error names the file.
pub fn read_annotation(path: &Path) -> Result<VocAnnotation> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read annotation '{}'", path.display()))?;
    parse_annotation(&text).with_context(|| format!("bad annotation '{}'", path.display()))
}

/// An object while its fields are being read.
#[derive(Default)]
struct PartialObject {
    name: Option<String>,
    pose: Option<String>,
    truncated: Option<String>,
    difficult: Option<String>,
    coords: [Option<String>; 4],
}

const COORDS: [&str; 4] = ["xmin", "ymin", "xmax", "ymax"];

impl PartialObject {
    /// The object, or why it cannot be used (the message names the field at fault).
    fn finish(self, number: usize) -> std::result::Result<VocObject, SkippedObject> {
        let name = self.name.unwrap_or_default();
        let skip = |reason: String| SkippedObject { number, name: name.clone(), reason };
        if name.is_empty() {
            return Err(skip("missing <name>".into()));
        }
        if self.coords.iter().all(Option::is_none) {
            return Err(skip("missing <bndbox>".into()));
        }
        let mut bndbox = [0f32; 4];
        for (k, value) in self.coords.iter().enumerate() {
            let Some(value) = value.as_deref() else {
                return Err(skip(format!("missing <bndbox>/<{}>", COORDS[k])));
            };
            match value.parse::<f32>().ok().filter(|v| v.is_finite()) {
                Some(v) => bndbox[k] = v,
                None => return Err(skip(format!("<bndbox>/<{}> '{value}' is not a number", COORDS[k]))),
            }
        }
        let flag = |field: &str, value: Option<String>| -> std::result::Result<bool, SkippedObject> {
            match value.as_deref() {
                None | Some("") => Ok(false),
                Some(v) => match v.parse::<f32>() {
                    Ok(x) => Ok(x != 0.0),
                    Err(_) => Err(skip(format!("<{field}> '{v}' is not 0 or 1"))),
                },
            }
        };
        let truncated = flag("truncated", self.truncated)?;
        let difficult = flag("difficult", self.difficult)?;
        Ok(VocObject { pose: self.pose.unwrap_or_else(|| "Unspecified".into()), name, truncated, difficult, bndbox })
    }
}

fn line_of(text: &str, position: u64) -> usize {
    let end = (position as usize).min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Parses the text of an annotation file.
pub fn parse_annotation(xml: &str) -> Result<VocAnnotation> {
    let mut reader = Reader::from_str(xml);
    // Element names from the root down to the current one.
    let mut path: Vec<String> = Vec::new();
    let mut saw_root = false;
    let mut header = Header::default();
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    let mut current: Option<PartialObject> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| anyhow!("malformed XML at line {}: {e}", line_of(xml, reader.error_position())))?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    if saw_root {
                        bail!(
                            "malformed XML at line {}: a second root element <{name}>",
                            line_of(xml, reader.buffer_position())
                        );
                    }
                    saw_root = true;
                }
                path.push(name);
                if path.len() == 2 && path[1] == "object" {
                    current = Some(PartialObject::default());
                }
            }
            Event::End(_) => {
                if path.len() == 2 && path[1] == "object" {
                    let object = current.take().expect("an <object> is open while its end tag is read");
                    match object.finish(objects.len() + skipped.len() + 1) {
                        Ok(o) => objects.push(o),
                        Err(s) => skipped.push(s),
                    }
                }
                path.pop();
            }
            Event::Text(text) => {
                // A stray '&' (Windows paths, free-text fields) is kept as written rather than refused.
                let value = text
                    .unescape()
                    .map(|v| v.into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(&text).into_owned());
                store(&path[..], value.trim(), &mut current, &mut header);
            }
            Event::CData(data) => {
                let value = data.decode().map_err(|e| anyhow!("malformed XML: {e}"))?;
                store(&path[..], value.trim(), &mut current, &mut header);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        bail!("malformed XML: no <annotation> element");
    }
    if let Some(open) = path.last() {
        bail!("malformed XML: the file ends inside <{open}>");
    }
    // Missing, garbled or zero: unknown (0), for the dataset to take from the image.
    let size_field = |value: Option<String>| -> u32 {
        value.and_then(|v| v.parse::<f32>().ok()).filter(|v| *v >= 1.0 && v.is_finite()).map_or(0, |v| v as u32)
    };
    let (mut width, mut height) = (size_field(header.width), size_field(header.height));
    if width == 0 || height == 0 {
        (width, height) = (0, 0);
    }
    let depth = header.depth.and_then(|d| d.parse::<f32>().ok()).map_or(3, |d| d as u32);
    let segmented = header.segmented.and_then(|d| d.parse::<f32>().ok()).is_some_and(|d| d != 0.0);
    Ok(VocAnnotation {
        folder: header.folder.unwrap_or_default(),
        filename: header.filename.unwrap_or_default(),
        database: header.database.unwrap_or_default(),
        width,
        height,
        depth,
        segmented,
        objects,
        skipped,
    })
}

/// The fields outside objects, as read (text, not yet checked).
#[derive(Default)]
struct Header {
    folder: Option<String>,
    filename: Option<String>,
    database: Option<String>,
    width: Option<String>,
    height: Option<String>,
    depth: Option<String>,
    segmented: Option<String>,
}

/// Stores the text of the element at `path` if it is a field we keep.
fn store(path: &[String], value: &str, object: &mut Option<PartialObject>, header: &mut Header) {
    if value.is_empty() || path.len() < 2 {
        return;
    }
    let set = |slot: &mut Option<String>| *slot = Some(value.to_string());
    let rest: Vec<&str> = path[1..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["folder"] => set(&mut header.folder),
        ["filename"] => set(&mut header.filename),
        ["source", "database"] => set(&mut header.database),
        ["size", "width"] => set(&mut header.width),
        ["size", "height"] => set(&mut header.height),
        ["size", "depth"] => set(&mut header.depth),
        ["segmented"] => set(&mut header.segmented),
        ["object", field] | ["object", "bndbox", field] => {
            let Some(o) = object.as_mut() else { return };
            let in_box = rest.len() == 3;
            match (in_box, *field) {
                (false, "name") => set(&mut o.name),
                (false, "pose") => set(&mut o.pose),
                (false, "truncated") => set(&mut o.truncated),
                (false, "difficult") => set(&mut o.difficult),
                (true, coord) => {
                    if let Some(k) = COORDS.iter().position(|c| *c == coord) {
                        set(&mut o.coords[k]);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIRD_PARTY: &str = r#"<?xml version="1.0"?>
<annotation verified="yes">
	<folder>JPEGImages</folder>
	<filename>000001.jpg</filename>
	<path>D:\ssd.pytorch-master\R&D\JPEGImages\000001.jpg</path>
	<source><database>Unknown</database><annotation>PASCAL VOC2007</annotation></source>
	<owner><name>someone</name></owner>
	<size><width>500</width><height>375</height><depth>3</depth></size>
	<segmented>0</segmented>
	<object>
		<name>person</name>
		<pose>Left</pose>
		<truncated>1</truncated>
		<occluded>0</occluded>
		<difficult>0</difficult>
		<actions><jumping>1</jumping></actions>
		<bndbox><xmin>12.0</xmin><ymin>20</ymin><xmax>250.5</xmax><ymax>370</ymax></bndbox>
		<part>
			<name>head</name>
			<bndbox><xmin>100</xmin><ymin>22</ymin><xmax>140</xmax><ymax>70</ymax></bndbox>
		</part>
		<part><name>hand</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></part>
	</object>
	<object>
		<name>dog &amp; co</name>
		<difficult>1</difficult>
		<bndbox><xmin>300</xmin><ymin>200</ymin><xmax>480</xmax><ymax>360</ymax></bndbox>
	</object>
</annotation>"#;

    #[test]
    fn parses_third_party_fields_and_ignores_parts() {
        let a = parse_annotation(THIRD_PARTY).unwrap();
        assert_eq!(a.filename, "000001.jpg");
        assert_eq!((a.width, a.height, a.depth), (500, 375, 3));
        assert_eq!(a.objects.len(), 2, "parts are not objects: {:?}", a.objects);
        let p = &a.objects[0];
        assert_eq!(p.name, "person");
        assert_eq!(p.pose, "Left");
        assert!(p.truncated && !p.difficult);
        assert_eq!(p.bndbox, [12.0, 20.0, 250.5, 370.0], "the object's box, not a part's");
        assert_eq!((a.folder.as_str(), a.database.as_str(), a.segmented), ("JPEGImages", "Unknown", false));
        let d = &a.objects[1];
        assert_eq!(d.name, "dog & co");
        assert_eq!(d.pose, "Unspecified");
        assert!(d.difficult && !d.truncated);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |xml: &str| format!("{:#}", parse_annotation(xml).unwrap_err());
        let e = err("<annotation><size><width>5</width><height>5</height></size><object><name>cat</name></annotation>");
        assert!(e.contains("malformed XML"), "{e}");
        let e = err("<annotation><size><width>5</width>");
        assert!(e.contains("malformed XML"), "{e}");
        assert!(err("").contains("no <annotation>"));
    }

    #[test]
    fn unreadable_objects_are_skipped_with_their_number_and_reason() {
        let a = parse_annotation(
            "<annotation><size><width>50</width><height>40</height></size>\
             <object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object>\
             <object><name>dog</name><bndbox><xmin>1</xmin><ymin>x1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object>\
             <object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax></bndbox></object>\
             <object><name>bird</name></object>\
             <object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object>\
             <object><name>cow</name><difficult>maybe</difficult>\
             <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object>\
             <object><name>dog</name><bndbox><xmin>12.5</xmin><ymin>1</ymin><xmax>30.25</xmax><ymax>3</ymax></bndbox></object>\
             </annotation>",
        )
        .unwrap();
        let kept: Vec<(&str, [f32; 4])> = a.objects.iter().map(|o| (o.name.as_str(), o.bndbox)).collect();
        assert_eq!(kept, vec![("cat", [1.0, 1.0, 3.0, 3.0]), ("dog", [12.5, 1.0, 30.25, 3.0])]);
        let skipped: Vec<(usize, &str, &str)> =
            a.skipped.iter().map(|s| (s.number, s.name.as_str(), s.reason.as_str())).collect();
        assert_eq!(
            skipped,
            vec![
                (2, "dog", "<bndbox>/<ymin> 'x1' is not a number"),
                (3, "cat", "missing <bndbox>/<ymax>"),
                (4, "bird", "missing <bndbox>"),
                (5, "", "missing <name>"),
                (6, "cow", "<difficult> 'maybe' is not 0 or 1"),
            ]
        );
    }

    #[test]
    fn a_missing_garbled_or_zero_size_reads_as_unknown() {
        for size in [
            "",
            "<size><width>0</width><height>0</height></size>",
            "<size><width>50</width></size>",
            "<size><width>abc</width><height>40</height></size>",
        ] {
            let a = parse_annotation(&format!("<annotation><filename>a.jpg</filename>{size}</annotation>")).unwrap();
            assert_eq!((a.width, a.height, a.has_size()), (0, 0, false), "{size}");
        }
        let a = parse_annotation("<annotation><size><width>50</width><height>40.0</height></size></annotation>");
        assert!(a.unwrap().has_size());
    }

    /// An annotation using every field the writer emits: escaped text, flags, fractional coordinates.
    fn full_annotation() -> VocAnnotation {
        let mut a = VocAnnotation::new("a&b <1>.jpg", 500, 375);
        a.folder = "VOC2007".into();
        a.database = "Tom's \"shapes\" database".into();
        a.segmented = true;
        let mut dog = VocObject::new("dog & co", [12.0, 20.0, 250.5, 370.25]);
        (dog.pose, dog.difficult) = ("Left".into(), true);
        let mut person = VocObject::new("person<1>", [1.0, 2.0, 3.0, 4.0]);
        person.truncated = true;
        a.objects = vec![dog, person, VocObject::new("cat", [0.1, 1e-3, 499.99, 375.0])];
        a
    }

    #[test]
    fn written_annotations_read_back_unchanged() {
        let a = full_annotation();
        let xml = a.to_xml();
        assert_eq!(parse_annotation(&xml).unwrap(), a, "{xml}");
        assert!(xml.contains("<name>dog &amp; co</name>") && xml.contains("<name>person&lt;1&gt;</name>"), "{xml}");
        assert!(xml.contains("<xmin>12</xmin>") && xml.contains("<xmax>250.5</xmax>"), "integers stay integers: {xml}");
        assert!(xml.contains("<difficult>1</difficult>") && xml.contains("<segmented>1</segmented>"), "{xml}");
        let order = ["<folder>", "<filename>", "<source>", "<database>", "<size>", "<width>", "<segmented>"];
        let order = order.iter().chain(&["<object>"]);
        let at: Vec<usize> = order.map(|tag| xml.find(tag).unwrap_or_else(|| panic!("no {tag}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "VOC's element order: {xml}");
        let bare = VocAnnotation::new("x.jpg", 64, 48);
        assert_eq!(parse_annotation(&bare.to_xml()).unwrap(), bare, "empty fields and no objects");
    }

    #[test]
    fn write_annotation_round_trips_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000007.xml");
        write_annotation(&path, &full_annotation()).unwrap();
        assert_eq!(read_annotation(&path).unwrap(), full_annotation());
        let e = format!("{:#}", write_annotation(&dir.path().join("gone/1.xml"), &full_annotation()).unwrap_err());
        assert!(e.contains("gone/1.xml"), "{e}");
        let mut bad = full_annotation();
        bad.objects[1].bndbox[2] = f32::NAN;
        let e = format!("{:#}", write_annotation(&path, &bad).unwrap_err());
        assert!(e.contains("000007.xml") && e.contains("object #2 'person<1>'") && e.contains("NaN"), "{e}");
    }

    #[test]
    fn read_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.xml");
        std::fs::write(&path, "<annotation><size></annotation>").unwrap();
        let e = format!("{:#}", read_annotation(&path).unwrap_err());
        assert!(e.contains("broken.xml") && e.contains("malformed XML"), "{e}");
        let e = format!("{:#}", read_annotation(&dir.path().join("gone.xml")).unwrap_err());
        assert!(e.contains("gone.xml"), "{e}");
    }
}
