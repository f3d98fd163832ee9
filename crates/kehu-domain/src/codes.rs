//! Closed code lists (enums) with a stable code for files and the API, a Chinese and an
//! English label for people. Parsing accepts the code (any case) or the Chinese label.

/// Declares a code list. Each variant: `Variant = "code", "中文", "English"`.
#[macro_export]
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $code:literal, $zh:literal, $en:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
                 serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name { $(#[serde(rename = $code)] $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn code(self) -> &'static str { match self { $($name::$v => $code),+ } }
            pub fn label_zh(self) -> &'static str { match self { $($name::$v => $zh),+ } }
            pub fn label_en(self) -> &'static str { match self { $($name::$v => $en),+ } }
            /// Accepts the code in any case, or the Chinese label.
            pub fn parse(s: &str) -> Option<$name> {
                let t = s.trim();
                $( if t.eq_ignore_ascii_case($code) || t == $zh { return Some($name::$v); } )+
                None
            }
            /// The accepted codes, for error messages: `a|b|c`.
            pub fn expected() -> String {
                [$($code),+].join("|")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.code()) }
        }
    };
}
