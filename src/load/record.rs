//! The serde record path, the definition the byte scanner must agree with (D54): records
//! deserialized straight into cells, borrowing strings from the input where it can.

use super::*;

pub(super) struct RecordSeed<'k> {
    pub(super) keys: &'k KeyMap,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Record<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user or device object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Record<'de>, A::Error> {
        let mut st = RecordState {
            rec: Record {
                cells: vec![Cell::Null; self.keys.layout_len],
                extensions: Vec::new(),
            },
            primary: vec![false; self.keys.layout_len],
            seen: self.keys.seen_set(),
        };
        while let Some(key) = m.next_key::<Text<'de>>()? {
            let key = key.0;
            refuse_number(&key, "a record must be an object")?;
            st.entry(self.keys, &mut m, key)?;
        }
        if matches!(st.rec.cells.get(self.keys.id_col), None | Some(Cell::Null)) {
            return Err(de::Error::custom("the record has no `id`"));
        }
        Ok(st.rec)
    }
}

/// A record being read by the serde path: its cells, which hold a Graph key's value (which a
/// fallback must not replace), and the slots of the keys seen (D62).
pub(super) struct RecordState<'de> {
    pub(super) rec: Record<'de>,
    pub(super) primary: Vec<bool>,
    pub(super) seen: Vec<u64>,
}

impl<'de> RecordState<'de> {
    /// Reads the value of `key` (the map's next value) into the record.
    pub(super) fn entry<A: MapAccess<'de>>(
        &mut self,
        keys: &KeyMap,
        m: &mut A,
        key: Cow<'de, str>,
    ) -> Result<(), A::Error> {
        let entry = keys.get(&key);
        if let Some((slot, _)) = entry {
            if !first_sight(&mut self.seen, *slot) {
                return Err(de::Error::custom(repeated_key(&key)));
            }
        }
        let (rec, primary) = (&mut self.rec, &mut self.primary);
        match entry.map(|e| &e.1) {
            Some(Target::Scalar {
                col,
                kind,
                primary: is_primary,
            }) => {
                let cell = m.next_value_seed(CellSeed {
                    kind: *kind,
                    name: &key,
                })?;
                set(rec, primary, *col, cell, *is_primary);
            }
            Some(Target::First(col)) => {
                let cell = first_of(m.next_value_seed(CellSeed {
                    kind: Kind::List,
                    name: &key,
                })?);
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Nested(inner)) => {
                let pairs = m.next_value_seed(NestedSeed { inner })?;
                for (col, cell) in pairs {
                    set(rec, primary, col, cell, true);
                }
            }
            Some(Target::Manager(col)) => {
                let cell = m.next_value_seed(IdSeed { name: "manager" })?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::MemberOf(col)) => {
                let cell = m.next_value_seed(IdListSeed)?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Plans(col)) => {
                let cell = m.next_value_seed(PlansSeed)?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Licenses(col)) => {
                let cell = m.next_value_seed(LicensesSeed { name: &key })?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Additional) => {
                m.next_value_seed(AdditionalSeed { keys, state: self })?;
            }
            None if keys.keeps_extension(&key) => {
                let name = key.to_ascii_lowercase();
                if rec.extensions.iter().any(|(k, _)| *k == name) {
                    return Err(de::Error::custom(repeated_key(&key)));
                }
                let v = m.next_value_seed(LooseSeed)?;
                rec.extensions.push((name, v));
            }
            None => {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Graph PowerShell's `AdditionalProperties` (`Get-MgUser | ConvertTo-Json`): the properties
/// its typed model lacks — directory extensions above all — read as if they stood at the top
/// level of the record (null is none; D70).
pub(super) struct AdditionalSeed<'s, 'de> {
    pub(super) keys: &'s KeyMap,
    pub(super) state: &'s mut RecordState<'de>,
}

impl<'de> DeserializeSeed<'de> for AdditionalSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AdditionalSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`AdditionalProperties` as an object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(key) = m.next_key::<Text<'de>>()? {
            refuse_number(&key.0, "`AdditionalProperties` must be an object")?;
            self.state.entry(self.keys, &mut m, key.0)?;
        }
        Ok(())
    }
}

/// `businessPhones` → `telephoneNumber`: a list's first element (null when empty or null).
pub(super) fn first_of(cell: Cell<'_>) -> Cell<'_> {
    match cell {
        Cell::List(xs) => xs
            .into_iter()
            .next()
            .flatten()
            .map_or(Cell::Null, Cell::Str),
        other => other,
    }
}

#[inline]
pub(super) fn set<'de>(
    rec: &mut Record<'de>,
    primary: &mut [bool],
    col: usize,
    cell: Cell<'de>,
    is_primary: bool,
) {
    let Some(slot) = rec.cells.get_mut(col) else {
        return;
    };
    let was_primary = primary.get(col).copied().unwrap_or(false);
    let null = matches!(cell, Cell::Null);
    let fill = !null && (is_primary || !was_primary);
    if fill {
        *slot = cell;
        if is_primary {
            if let Some(p) = primary.get_mut(col) {
                *p = true;
            }
        }
    }
}

/// A string that borrows from the input when it has no escapes.
pub(super) struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads one value for a column of `kind`.
pub(super) struct CellSeed<'n> {
    pub(super) kind: Kind,
    pub(super) name: &'n str,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = Cell<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cell<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_> {
    pub(super) fn text<'de, E: de::Error>(&self, s: Cow<'de, str>) -> Result<Cell<'de>, E> {
        let name = self.name;
        text_cell(self.kind, s).map_err(|(want, s)| {
            E::custom(match want {
                TextWant::Bool => format!("`{name}` must be true or false, not {s:?}"),
                TextWant::Date => format!("`{name}` must be an ISO 8601 date-time, not {s:?}"),
                TextWant::Array => format!("`{name}` must be an array"),
                TextWant::PowerShell(p) => powershell_error(name, p, &s),
            })
        })
    }

    pub(super) fn wrong<E: de::Error>(&self, found: &str) -> E {
        let want = match self.kind {
            Kind::Str => "a string",
            Kind::Bool => "true or false",
            Kind::Date => "a date-time string",
            Kind::List => "an array of strings",
            Kind::Plans => "an array of assignedPlan objects",
            Kind::Licenses => "an array of licence objects",
        };
        E::custom(format!("`{}` must be {want}, not {found}", self.name))
    }
}

/// What a string could not be read as (see [`text_cell`]).
pub(super) enum TextWant {
    Bool,
    Date,
    Array,
    /// PowerShell's text for an object or a collection (see [`powershell_text`]).
    PowerShell(PowerShellText),
}

/// The error for PowerShell's text in `name` (D68).
pub(super) fn powershell_error(name: &str, kind: PowerShellText, s: &str) -> String {
    let shown: String = s.trim().chars().take(40).collect();
    match kind {
        PowerShellText::Depth => format!(
            "`{name}` holds PowerShell's text for an object ({shown:?}…), not the object: ConvertTo-Json stopped at its default -Depth of 2. Re-export with `ConvertTo-Json -Depth 10`"
        ),
        PowerShellText::TypeName => format!(
            "`{name}` holds {shown:?}, the type name Export-Csv writes for a collection, not its values: export with a calculated property (`@{{n='{name}';e={{$_.{name} -join ';'}}}}`) or as JSON (`ConvertTo-Json -Depth 10`)"
        ),
    }
}

/// A string read into a column of `kind` (both record paths use it): as itself, a one-element
/// list, `true`/`false` in any case, or an ISO 8601 date-time; blank is null for a boolean or
/// date.
///
/// Errors: what the column wanted, with the string.
pub(super) fn text_cell(kind: Kind, s: Cow<'_, str>) -> Result<Cell<'_>, (TextWant, Cow<'_, str>)> {
    match (kind, powershell_text(&s)) {
        // A type name is never a string property's value either; `@{…}` might be.
        (_, Some(PowerShellText::TypeName)) => {
            return Err((TextWant::PowerShell(PowerShellText::TypeName), s));
        }
        (Kind::List | Kind::Plans | Kind::Licenses, Some(p)) => {
            return Err((TextWant::PowerShell(p), s));
        }
        _ => {}
    }
    match kind {
        Kind::Str => Ok(Cell::Str(s)),
        Kind::List => Ok(Cell::List(vec![Some(s)])),
        Kind::Bool => {
            if s.eq_ignore_ascii_case("true") {
                Ok(Cell::Bool(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Cell::Bool(false))
            } else if s.trim().is_empty() {
                Ok(Cell::Null)
            } else {
                Err((TextWant::Bool, s))
            }
        }
        Kind::Date => {
            if s.trim().is_empty() {
                return Ok(Cell::Null);
            }
            match export_date(&s) {
                Some(t) => Ok(Cell::Date(t)),
                None => Err((TextWant::Date, s)),
            }
        }
        Kind::Plans | Kind::Licenses => Err((TextWant::Array, s)),
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = Cell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value for `{}`", self.name)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cell<'de>, E> {
        self.text(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        self.text(Cow::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Cell<'de>, E> {
        self.text(Cow::Owned(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell<'de>, E> {
        match self.kind {
            Kind::Bool => Ok(Cell::Bool(v)),
            Kind::Str | Kind::List => self.text(Cow::Owned(v.to_string())),
            _ => Err(self.wrong("a boolean")),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell<'de>, E> {
        self.number(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell<'de>, E> {
        self.number(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell<'de>, E> {
        let text = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        self.number(text)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        if self.kind != Kind::List {
            return Err(self.wrong("an array"));
        }
        let mut out = Vec::new();
        while let Some(v) = s.next_element_seed(ElementSeed { name: self.name })? {
            out.push(v);
        }
        Ok(Cell::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Cell<'de>, A::Error> {
        match number_text(m)? {
            Some(text) => self.number(text),
            None => Err(self.wrong("an object")),
        }
    }
}

/// serde_json (with `arbitrary_precision`) hands a number that does not fit `u64`/`i64`
/// (`1e2`, `10.0`, `2e400`, `123456789012345678901234`) to `visit_map` as a one-entry map
/// under this key, with the number's JSON text as its value.
pub(super) const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Refuses a number where an object is read: with `arbitrary_precision`, serde_json hands such
/// a number to `visit_map` as the key [`NUMBER_TOKEN`]. `expected` says what belongs there
/// ("a licence entry must be an object").
///
/// Errors: `"{expected}, not a number"` when `key` is the token.
pub(super) fn refuse_number<E: de::Error>(key: &str, expected: &str) -> Result<(), E> {
    if key == NUMBER_TOKEN {
        Err(E::custom(format!("{expected}, not a number")))
    } else {
        Ok(())
    }
}

/// The JSON text of a number given as a map (see [`NUMBER_TOKEN`]), or `None` for a real
/// object (whose entries are then left unread: the caller rejects or ignores the object).
pub(super) fn number_text<'de, A: MapAccess<'de>>(mut m: A) -> Result<Option<String>, A::Error> {
    match m.next_key::<Text<'de>>()? {
        Some(k) if k.0 == NUMBER_TOKEN => Ok(Some(m.next_value::<String>()?)),
        Some(_) => {
            m.next_value::<IgnoredAny>()?;
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        None => Ok(None),
    }
}

impl CellSeed<'_> {
    pub(super) fn number<'de, E: de::Error>(&self, text: String) -> Result<Cell<'de>, E> {
        match self.kind {
            Kind::Str | Kind::List => self.text(Cow::Owned(text)),
            _ => Err(self.wrong("a number")),
        }
    }
}

/// `DeserializeSeed` for seeds that are their own `Visitor` and accept any JSON value.
macro_rules! seed_via_any {
    ($($seed:ty),*) => {$(
        impl<'de> DeserializeSeed<'de> for $seed {
            type Value = <$seed as Visitor<'de>>::Value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    )*};
}

seed_via_any!(
    LooseSeed,
    IdSeed,
    IdListSeed,
    PlansSeed,
    PlanSeed,
    LicenseSeed
);

/// The `visit_*` methods of a visitor whose value is `Option<Cow<str>>`: a string as itself, a
/// boolean or number as its text, null as `None` ([`LooseSeed`], [`ElementSeed`]; they differ in
/// arrays and objects).
macro_rules! scalar_as_text {
    () => {
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(
                serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
            )))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// A scalar as text (strings, numbers, booleans); null, arrays and objects are `None`. Used for
/// collection elements and directory extensions.
pub(super) struct LooseSeed;

impl<'de> Visitor<'de> for LooseSeed {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    scalar_as_text!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        Ok(number_text(m)?.map(Cow::Owned))
    }
}

/// One element of a string collection (`proxyAddresses`, `otherMails`, `disabledPlans`): a
/// string, or a number or boolean as its JSON text; null is a null element. An array or
/// object is an error, as it is for a single-valued property (D31).
pub(super) struct ElementSeed<'n> {
    pub(super) name: &'n str,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ElementSeed<'_> {
    pub(super) fn wrong<E: de::Error>(&self, found: &str) -> E {
        E::custom(format!(
            "`{}` must be an array of strings, not an array holding {found}",
            self.name
        ))
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_> {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string in `{}`", self.name)
    }
    scalar_as_text!();
    fn visit_seq<A: SeqAccess<'de>>(self, _s: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        match number_text(m)? {
            Some(text) => Ok(Some(Cow::Owned(text))),
            None => Err(self.wrong("an object")),
        }
    }
}

/// `onPremisesExtensionAttributes`: `{"extensionAttribute1": …, …}`.
pub(super) struct NestedSeed<'m> {
    pub(super) inner: &'m hashbrown::HashMap<String, usize>,
}

impl<'de> DeserializeSeed<'de> for NestedSeed<'_> {
    type Value = Vec<(usize, Cell<'de>)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NestedSeed<'_> {
    type Value = Vec<(usize, Cell<'de>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of extension attributes")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error(
                "onPremisesExtensionAttributes",
                p,
                v,
            ))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(usize, Cell<'de>)> = Vec::new();
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "`onPremisesExtensionAttributes` must be an object")?;
            let col = self
                .inner
                .get(k.0.as_ref())
                .or_else(|| self.inner.get(&k.0.to_ascii_lowercase()));
            match col {
                Some(&col) => {
                    if out.iter().any(|(c, _)| *c == col) {
                        return Err(de::Error::custom(repeated_key(&k.0)));
                    }
                    let cell = m.next_value_seed(CellSeed {
                        kind: Kind::Str,
                        name: &k.0,
                    })?;
                    out.push((col, cell));
                }
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// `manager`: `{"id": "…", …}`, a plain id, or null.
/// `name`: the key being read, for errors.
pub(super) struct IdSeed {
    pub(super) name: &'static str,
}

impl<'de> Visitor<'de> for IdSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a directory object {\"id\": …} or an id")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cell<'de>, E> {
        if let Some(p) = powershell_text(v) {
            return Err(E::custom(powershell_error(self.name, p, v)));
        }
        Ok(Cell::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        if let Some(p) = powershell_text(v) {
            return Err(E::custom(powershell_error(self.name, p, v)));
        }
        Ok(Cell::Str(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Cell<'de>, A::Error> {
        let mut id = Cell::Null;
        let mut seen = false;
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "a directory object must be {\"id\": …} or an id")?;
            if k.0.eq_ignore_ascii_case("id") {
                if std::mem::replace(&mut seen, true) {
                    return Err(de::Error::custom(repeated_key(&k.0)));
                }
                id = m.next_value_seed(LooseSeed)?.map_or(Cell::Null, Cell::Str);
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}

/// `memberOf`: an array of ids or of `{"id": …}` objects.
pub(super) struct IdListSeed;

impl<'de> Visitor<'de> for IdListSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of group ids or objects")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error("memberOf", p, v))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(c) = s.next_element_seed(IdSeed { name: "memberOf" })? {
            if let Cell::Str(id) = c {
                out.push(Some(id));
            }
        }
        Ok(Cell::List(out))
    }
}

/// `assignedPlans`: objects with `servicePlanId`, `service`, `capabilityStatus` (other fields,
/// such as `assignedDateTime`, are not readable by rules and are not kept).
pub(super) struct PlansSeed;

impl<'de> Visitor<'de> for PlansSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of assignedPlan objects")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error("assignedPlans", p, v))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = s.next_element_seed(PlanSeed)? {
            out.push(p);
        }
        Ok(Cell::Plans(out))
    }
}

pub(super) struct PlanSeed;

/// The fields of an `assignedPlan` object the load reads, in [`PlanSeed`]'s order.
pub(super) const PLAN_FIELDS: [&str; 3] = ["servicePlanId", "service", "capabilityStatus"];

/// The fields of an `assignedLicense` or `licenseAssignmentState` the load reads.
pub(super) const LICENSE_FIELDS: [&str; 5] = [
    "skuId",
    "disabledPlans",
    "assignedByGroup",
    "state",
    "error",
];

impl<'de> Visitor<'de> for PlanSeed {
    type Value = [Option<Cow<'de, str>>; 3];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an assignedPlan object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out: [Option<Cow<'de, str>>; 3] = [None, None, None];
        let mut seen = 0u8;
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "an `assignedPlans` entry must be an object")?;
            let slot = PLAN_FIELDS
                .iter()
                .position(|f| f.eq_ignore_ascii_case(&k.0));
            if let Some(i) = slot {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom(repeated_key(&k.0)));
                }
                seen |= 1 << i;
            }
            match slot.and_then(|i| out.get_mut(i)) {
                Some(s) => *s = m.next_value_seed(LooseSeed)?,
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// `assignedLicenses` (`{skuId, disabledPlans}`) or `licenseAssignmentStates` (plus
/// `assignedByGroup`, `state`, `error`); other fields are skipped. An entry without `skuId` is
/// an error: a licence cannot be attributed without it.
pub(super) struct LicensesSeed<'n> {
    pub(super) name: &'n str,
}

impl<'de> Visitor<'de> for LicensesSeed<'_> {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` as an array of objects with `skuId`", self.name)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error(self.name, p, v))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = s.next_element_seed(LicenseSeed)? {
            if p.sku_id.is_none() {
                return Err(de::Error::custom(format!(
                    "an entry of `{}` has no `skuId`",
                    self.name
                )));
            }
            out.push(p);
        }
        Ok(Cell::Licenses(out))
    }
}

impl<'de> DeserializeSeed<'de> for LicensesSeed<'_> {
    type Value = Cell<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cell<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

pub(super) struct LicenseSeed;

impl<'de> Visitor<'de> for LicenseSeed {
    type Value = LicenseCell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a licence object with `skuId`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out = LicenseCell::default();
        let mut seen = 0u8;
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "a licence entry must be an object")?;
            let k = k.0;
            if let Some(i) = LICENSE_FIELDS
                .iter()
                .position(|f| f.eq_ignore_ascii_case(&k))
            {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom(repeated_key(&k)));
                }
                seen |= 1 << i;
            }
            if k.eq_ignore_ascii_case("skuId") {
                out.sku_id = m.next_value_seed(LooseSeed)?;
            } else if k.eq_ignore_ascii_case("disabledPlans") {
                if let Cell::List(xs) = m.next_value_seed(CellSeed {
                    kind: Kind::List,
                    name: "disabledPlans",
                })? {
                    out.disabled_plans = xs.into_iter().flatten().collect();
                }
            } else if k.eq_ignore_ascii_case("assignedByGroup") {
                out.assigned_by_group = m.next_value_seed(LooseSeed)?;
            } else if k.eq_ignore_ascii_case("state") {
                out.state = m.next_value_seed(LooseSeed)?;
            } else if k.eq_ignore_ascii_case("error") {
                out.error = m.next_value_seed(LooseSeed)?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}
